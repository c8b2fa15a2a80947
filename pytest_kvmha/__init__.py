"""pytest-kvmha: audit and provision HA firewall clusters on KVM + Open vSwitch."""
