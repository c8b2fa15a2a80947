"""``python -m pytest_kvmha.testing up|down`` (see :mod:`.cli`)."""

import sys

from .cli import main

sys.exit(main())
