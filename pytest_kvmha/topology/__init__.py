"""Clusters, members and placements derived from facts and inventory (public: ``pytest_kvmha.topology``)."""

from pytest_kvmha.topology.cluster import *  # noqa: F403
