"""The frozen fact types the checks read (public: ``pytest_kvmha.facts``)."""

from pytest_kvmha.facts.firewall import *  # noqa: F403
from pytest_kvmha.facts.host import *  # noqa: F403
from pytest_kvmha.facts.trace import *  # noqa: F403
