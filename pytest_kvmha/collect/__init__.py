"""Collectors: the only code in pytest-kvmha that talks to hosts.

``host`` collects one host (``script`` is what it runs, ``transport`` how, ``framing`` how the
answer is split back into sections; ``libvirt``, ``netlink`` and ``firewall`` read the rest),
``replay`` reads a recording instead, ``pool`` collects many hosts at once and ``traces`` is the
trace phase. What the sections are called is :mod:`pytest_kvmha.bundle.contract`.
"""
