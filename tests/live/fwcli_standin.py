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
import re
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
    "fortigate": {
        "show system ha": "system ha",
        "show system interface": "system interface",
        "get system status": "",
        "config global": "",
        "end": "",
    },
    "cos-core": {"show HighAvailability": "", "show Interface EthernetInterface": ""},
}
STATUS_COMMANDS = {"fortigate": "get system ha status", "cos-core": "ha"}

# the platform code of a backup's header -> the model name "get system status" prints
MODEL_NAMES = {"FGVMK6": "FortiGate-VM64-KVM", "FGVM64": "FortiGate-VM64"}
HEADER = re.compile(r"#config-version=(\S+?)-(\d+\.\d+\.\d+)-FW-build(\d+)-(\d{6}):.*vdom=(\w+)")


def fortios_status(text: str) -> str:
    """A ``get system status`` answer (FortiOS CLI Reference, "system status": Version and
    Virtual domain configuration lines among Key: value lines) for the saved backup's header;
    nothing when the backup has no header (the member's firmware is then not known)."""
    m = HEADER.match(text)
    if m is None:
        return ""
    model, version, build, date, vdom = m.groups()
    return (
        f"Version: {MODEL_NAMES.get(model, model)} v{version},build{build},{date} (GA.F)\n"
        "Serial-Number: FGVMEVSTANDIN0000\n"
        f"Virtual domain configuration: {'disable' if vdom == '0' else 'multiple'}\n"
        f"Branch point: {build}\n"
    )


def fortigate(text: str, commands: list[str], status: str = "") -> str:
    """FortiOS's answers. In multi-VDOM mode (the header says vdom=1) the CLI prints its prompt
    and echoes each command, refuses 'show system ...' at the top level and answers it inside
    'config global' (prompt "NAME (global) #"), as Fortinet's examples show; a single-VDOM
    unit's answers are printed bare."""
    multi = bool((m := HEADER.match(text)) and m.group(5) != "0")
    name, scope, out = "FGT-STANDIN", "", []
    for command in commands:
        if multi:
            out.append(f"{name}{scope} # {command}\n")
        if command == "config global" and multi:
            scope = " (global)"
        elif command == "end" and multi:
            scope = ""
        elif command in ("config global", "end"):
            out.append(f"command parse error before '{command.split()[-1]}'\n")
            out.append("Command fail. Return code -61\n")
        elif command == "get system status":
            out.append(fortios_status(text))
        elif multi and not scope:
            out.append("command parse error before 'system'\nCommand fail. Return code -61\n")
        elif command == STATUS_COMMANDS["fortigate"]:
            out.append(status)
        else:
            out.append(fortios_block(text, COMMANDS["fortigate"][command]))
    if multi:
        out.append(f"{name}{scope} # \n")
    return "".join(out)


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
    commands = [" ".join(line.split()) for line in lines if line.strip()]
    for command in commands:
        if command == STATUS_COMMANDS[vendor]:
            continue  # answered below: the recorded status text, or nothing
        if command not in COMMANDS[vendor]:
            print(
                f"Command fail: {command[:60]!r} is not allowed for this account", file=sys.stderr
            )
            return 2
    if vendor == "fortigate":
        sys.stdout.write(fortigate(text, commands, status or ""))
    else:
        sys.stdout.write(
            "".join(
                (status or "") if command == STATUS_COMMANDS[vendor] else cos_answer(text, command)
                for command in commands
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
