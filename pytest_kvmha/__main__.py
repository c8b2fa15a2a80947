"""``python -m pytest_kvmha``: the ``kvmha`` command."""

import sys

from pytest_kvmha.cli import main

if __name__ == "__main__":
    sys.exit(main())
