"""pytest-kvmha: audit and provision HA firewall clusters on KVM + Open vSwitch."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pytest-kvmha")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
