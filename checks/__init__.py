"""pytest-kvmha check catalogue."""
