"""Stand-in for a firewall's read-only CLI, run by a lab sshd as its ForceCommand.

``fwcli_standin.py VENDOR CONFIG [STATUS]``: answers the fixed commands that pytest-kvmha sends
(one per line on standard input, or ssh's own command line): the ``show`` commands from a saved
configuration, the way the appliance would print them, and the HA status command (FortiOS
``get system ha status``, cOS Core ``ha``) with the text of STATUS; anything else (the status
command too when no STATUS is given) is refused (exit 2, nothing printed), like a read-only
account. The FortiGate/cOS Core appliances cannot run here; their CLI grammar can.
"""

from __future__ import annotations

import os
import sys


def fortios_block(text: str, path: str) -> str:
    """The top-level ``config <path>`` ... ``end`` block of a FortiOS configuration."""
    out: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        if not inside and line.rstrip("\n") == f"config {path}":
            inside = True
        if inside:
            out.append(line)
            if line.rstrip("\n") == "end":
                break
    return "".join(out)


def cos_answer(text: str, command: str) -> str:
    """The part of saved cOS Core output that follows ``Device:/> <command>``."""
    chunks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines(keepends=True):
        if line.startswith("Device:/> "):
            current = chunks.setdefault(" ".join(line[len("Device:/> ") :].split()), [line])
            continue
        if current is not None:
            current.append(line)
    return "".join(chunks.get(command, []))


COMMANDS = {
    "fortigate": {"show system ha": "system ha", "show system interface": "system interface"},
    "cos-core": {"show HighAvailability": "", "show Interface EthernetInterface": ""},
}
STATUS_COMMANDS = {"fortigate": "get system ha status", "cos-core": "ha"}


def main(argv: list[str]) -> int:
    vendor, path = argv[1], argv[2]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    status = None
    if len(argv) > 3:
        with open(argv[3], encoding="utf-8") as f:
            status = f.read()
    original = os.environ.get("SSH_ORIGINAL_COMMAND", "")
    lines = [original] if original.strip() else sys.stdin.read().splitlines()
    answers = []
    for line in lines:
        command = " ".join(line.split())
        if not command:
            continue
        if status is not None and command == STATUS_COMMANDS[vendor]:
            answers.append(status)
            continue
        if command not in COMMANDS[vendor]:
            print(
                f"Command fail: {command[:60]!r} is not allowed for this account", file=sys.stderr
            )
            return 2
        if vendor == "fortigate":
            answers.append(fortios_block(text, COMMANDS[vendor][command]))
        else:
            answers.append(cos_answer(text, command))
    sys.stdout.write("".join(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
