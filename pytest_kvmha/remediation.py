"""Remediation lines that are safe to paste into a root shell.

Every name in a remediation comes from a host or an inventory (a domain, a bridge, a NIC model,
a filter ...), and a reader pastes these lines as root. So a remediation line is built from an
argv, never from an f-string: each argument is shell-quoted, and the only free text is a
trailing ``# comment`` whose control characters (a newline would end the comment and start a
second command) are made visible instead. XML shown inside a comment gets its attribute values
XML-escaped, so that what a reader copies into ``virsh edit`` is the value and nothing else.
"""

from __future__ import annotations

import re
import shlex

__all__ = ["CONTROL", "REMOVE", "command", "comment", "inert", "xml_attr"]

# The one rule for characters a terminal, a report or a shell line treats as line breaks: C0 and
# C1 controls, DEL, U+2028 and U+2029. Every name check uses it (``config.names`` imports it).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


# Removing bridge-utils, per package manager (``PackageState.manager``): the check's remediation
# and the note of a provisioning plan, which never removes packages itself.
REMOVE = {
    "dpkg": "apt-get remove -y bridge-utils",
    "rpm": "dnf remove -y bridge-utils",
    "pacman": "pacman -R --noconfirm bridge-utils",
    "apk": "apk del bridge-utils",
}


def inert(text: object) -> str:
    """``text`` on one line: every control character shown as ``\\xNN`` (``\\uNNNN``)."""

    def show(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return CONTROL.sub(show, str(text))


def xml_attr(value: object) -> str:
    """An XML attribute value in single quotes, escaped so that it cannot end the attribute."""
    text = (
        str(value)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&apos;")
        .replace('"', "&quot;")
    )
    return f"'{inert(text)}'"


def comment(text: object) -> str:
    """A line that only says what to do (no command can be written for it)."""
    return "# " + inert(text)


def command(*argv: object, note: object | None = None) -> str:
    """One shell command from its argv (each argument quoted), with an optional inert note."""
    if not argv:
        raise ValueError("a remediation command needs at least the program name")
    words = [str(a) for a in argv]
    for word in words:
        # Quoted, a newline is inert for sh, but it would split this line in every report.
        # Parsing and the inventory refuse such names; reaching here is a bug: fail closed.
        if CONTROL.search(word):
            raise ValueError(f"control character in remediation argument {word!r}")
    line = shlex.join(words)
    if note is not None and str(note):
        line += "  " + comment(note)
    return line
