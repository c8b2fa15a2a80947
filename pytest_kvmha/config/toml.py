"""Reading a TOML file (an inventory, a waivers file) with usage errors that name the file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["load_toml", "tomllib"]


def load_toml(path: Path, what: str, error: type[Exception]) -> dict[str, Any]:
    """The document in ``path``; ``error`` (the caller's usage error) says why there is none.

    ``what`` names the kind of file in the message ("inventory": "no such inventory file")."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: unreadable: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None
