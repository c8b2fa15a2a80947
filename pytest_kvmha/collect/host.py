"""Collectors: the only code in pytest-kvmha that talks to hosts.

Every shell-level fact of a host (packages, Open vSwitch JSON, links, libvirt XML) comes back from
ONE remote command: a fixed POSIX shell script whose output is split into sections by a random
boundary. No name taken from a host or an inventory is ever put into that script; the script
reads domain/network/filter UUIDs on the host itself and quotes them there.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import secrets
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_kvmha.bundle.redact import redact
from pytest_kvmha.bundle.store import MISSING_RC, EvidenceBundle, Section
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.config.target import kill_session as _kill_session

# Restricting columns keeps bundles small on hosts with hundreds of ports; still raw OVS JSON.
OVS_TABLES = {
    "Open_vSwitch": "_uuid,ovs_version,cur_cfg,next_cfg",
    "Bridge": "_uuid,name,ports,datapath_type",
    "Port": "_uuid,name,interfaces,tag,trunks,vlan_mode",
    "Interface": "_uuid,name,type,options,external_ids,ofport,error,mac_in_use",
}
PACKAGES = ("bridge-utils", "openvswitch-switch", "openvswitch")

# What both host scripts start with: a private directory, the section markers, the sec helper.
_PREAMBLE = r"""
LC_ALL=C; export LC_ALL
PATH=$PATH:/usr/sbin:/sbin:/usr/local/sbin; export PATH
set -f  # unquoted lists (UUIDs) are split, never globbed
B=@BOUNDARY@
# A private directory from mktemp only: a guessable /tmp name could be a planted symlink.
if ! T=$(mktemp -d 2>&1) || [ ! -d "$T" ]; then
  printf '\n%s BEGIN mktemp\n\n%s STDERR mktemp\nmktemp -d failed: %s\n\n%s END mktemp 1\n' "$B" "$B" "$T" "$B"
  exit 1
fi
trap 'rm -rf "$T"' EXIT
# sec NAME CMD...: CMD's stdout streamed between the markers, its stderr after it (read back
# from a file, and only when there is some: every `cat` is one more process on the host).
sec() {
  n=$1; shift
  printf '\n%s BEGIN %s\n' "$B" "$n"
  "$@" 2>"$T/e"; rc=$?
  printf '\n%s STDERR %s\n' "$B" "$n"
  if [ -s "$T/e" ]; then cat "$T/e"; fi
  printf '\n%s END %s %s\n' "$B" "$n" "$rc"
}
"""

_SCRIPT = (
    r"""
PIN=${1-}"""
    + _PREAMBLE
    + r"""# secf FILE NAME CMD...: as sec, CMD's stdout also kept in FILE for the script's own use.
secf() {
  f=$1; shift; n=$1; shift
  "$@" >"$f" 2>"$T/e"; rc=$?
  emit "$n" "$f" "$T/e" "$rc"
}
# emit NAME OUTFILE ERRFILE RC: a section from files made earlier.
emit() {
  printf '\n%s BEGIN %s\n' "$B" "$1"; cat "$2"
  printf '\n%s STDERR %s\n' "$B" "$1"
  if [ -s "$3" ]; then cat "$3"; fi
  printf '\n%s END %s %s\n' "$B" "$1" "$4"
}
# words FILE: the first word of each line, in $w (a builtin loop: no process).
words() { w=; while read -r x _; do w="$w $x"; done <"$1"; }
identity() { cat /etc/machine-id 2>/dev/null || cat /var/lib/dbus/machine-id 2>/dev/null; hostname; }
pkgs() {
  if [ -e /var/lib/dpkg/status ] && command -v dpkg-query >/dev/null 2>&1; then
    echo manager=dpkg
    # one dpkg-query for all packages; an unknown one is missing from its output (exit 1)
    dpkg-query -W -f='${Package}\t${Status}\n' @PACKAGES@ >"$T/d" 2>/dev/null
    for p in @PACKAGES@; do  # (sec's own $n must survive: other names here)
      pr=1; ps=
      while IFS='	' read -r pn pst; do if [ "$pn" = "$p" ]; then pr=0; ps=$pst; fi; done <"$T/d"
      printf '%s\t%s\t%s\n' "$p" "$pr" "$ps"
    done
  elif command -v rpm >/dev/null 2>&1; then
    echo manager=rpm
    for p in @PACKAGES@; do s=$(rpm -q "$p" 2>&1); printf '%s\t%s\t%s\n' "$p" "$?" "$s"; done
  elif command -v pacman >/dev/null 2>&1; then
    echo manager=pacman
    for p in @PACKAGES@; do s=$(pacman -Q "$p" 2>&1); printf '%s\t%s\t%s\n' "$p" "$?" "$s"; done
  elif command -v apk >/dev/null 2>&1; then
    echo manager=apk
    for p in @PACKAGES@; do s=$(apk info -e "$p" 2>&1); printf '%s\t%s\t%s\n' "$p" "$?" "$s"; done
  else
    echo manager=none
  fi
}
sec identity identity
sec packages pkgs
if command -v ovs-vsctl >/dev/null 2>&1; then
  sec ovs-version ovs-vsctl --version
  sec ovs-vswitchd ovs-appctl --timeout=5 version
@OVS_TABLES@
else
  sec ovs-version sh -c 'echo "ovs-vsctl: command not found" >&2; exit 127'
fi
if [ -z "@SKIP_LINKS@" ]; then sec links ip -d -j link show; fi
# vb NAME SUBCOMMAND FILE UUID...: many dumps over ONE virsh connection, each after a marker
# "<boundary>:<uuid>:" (virsh's echo adds no newline; the collector splits them apart); the
# output is also kept in FILE.
vb() {
  n=$1; c=$2; o=$3; shift 3; cmds=""
  for u in "$@"; do
    case $u in *[!0-9a-fA-F-]*) continue;; esac
    cmds="$cmds echo $B:$u: ; $c $u ;"
  done
  if [ -n "$cmds" ]; then secf "$o" "batch-$n" v "$cmds"; else sec "batch-$n" true; : >"$o"; fi
}
# The URI the host's own virsh would use: the inventory's pin ($1, validated by the collector),
# else LIBVIRT_DEFAULT_URI of this login, else uri_default of the client's libvirt.conf, else
# qemu:///system. It is only ever expanded quoted ("$U"), never evaluated.
uri() {
  if [ -n "$PIN" ]; then U=$PIN; F=inventory
  elif [ -n "${LIBVIRT_DEFAULT_URI-}" ]; then U=$LIBVIRT_DEFAULT_URI; F=env
  else
    if [ "$(id -u)" = 0 ]; then C=/etc/libvirt/libvirt.conf
    else C=${XDG_CONFIG_HOME:-$HOME/.config}/libvirt/libvirt.conf; fi
    U=$(sed -n 's/^[[:space:]]*uri_default[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$C" 2>/dev/null | tail -n 1)
    if [ -n "$U" ]; then F=libvirt.conf; else U=qemu:///system; F=default; fi
  fi
  printf '%s\n%s\n' "$F" "$U"
}
v() { virsh -q -c "$U" "$@"; }
if [ -z "@SKIP_VIRSH@" ]; then
  secf "$T/u" libvirt-uri uri  # (a function, run in this shell: it sets F and U here)
  if command -v virsh >/dev/null 2>&1; then
    secf "$T/l" virsh-domains v list --all --uuid; words "$T/l"; all=$w
    secf "$T/l" virsh-active v list --uuid; words "$T/l"; active=$w
    sec virsh-paused v list --state-paused --uuid
    secf "$T/l" virsh-networks v net-list --all --uuid; words "$T/l"; nets=$w
    secf "$T/fl" virsh-nwfilters v nwfilter-list
    vb domain-inactive "dumpxml --inactive@SECURE@" "$T/di" $all
    vb domain-live "dumpxml@SECURE@" "$T/dl" $active
    vb network net-dumpxml "$T/l" $nets
    if [ -n "@ALL_FILTERS@" ]; then
      words "$T/fl"; vb nwfilter nwfilter-dumpxml "$T/l" $w
    else
      # Only the filters a domain NIC references, then the ones those reference, level by
      # level: names from XML are only compared (in awk), UUIDs from nwfilter-list are passed.
      : >"$T/nf"; : >"$T/ne"; : >"$T/seen"; i=0; xml="$T/di $T/dl"
      while [ $i -lt @FILTER_DEPTH@ ]; do
        want=$(awk '
          FILENAME == ARGV[1] { seen[$0] = 1; next }
          FILENAME == ARGV[2] { uuid[$2] = $1; next }
          { while (match($0, /<filterref[^>]*filter=["\047][^"\047]*["\047]/)) {
              r = substr($0, RSTART, RLENGTH); sub(/.*filter=["\047]/, "", r); sub(/["\047]$/, "", r)
              if ((r in uuid) && !(uuid[r] in seen) && !(uuid[r] in out)) { out[uuid[r]] = 1; print uuid[r] }
              $0 = substr($0, RSTART + RLENGTH) } }' "$T/seen" "$T/fl" $xml)
        [ -n "$want" ] || break
        printf '%s\n' $want >>"$T/seen"; cmds=""
        for u in $want; do
          case $u in *[!0-9a-fA-F-]*) continue;; esac
          cmds="$cmds echo $B:$u: ; nwfilter-dumpxml $u ;"
        done
        v "$cmds" >"$T/x" 2>>"$T/ne"; cat "$T/x" >>"$T/nf"; i=$((i + 1)); xml=$T/x
      done
      emit nwfilter-fetched "$T/seen" /dev/null 0
      emit batch-nwfilter "$T/nf" "$T/ne" 0
    fi
  else
    sec virsh-domains sh -c 'echo "virsh: command not found" >&2; exit 127'
  fi
fi
"""
)


# How deep nested <filterref>s are followed (libvirt's own clean-traffic is 3 levels); a filter
# further down is not fetched, and a check that needs it reports an error.
FILTER_DEPTH = 8


def batch_script(
    boundary: str, *, skip_links: bool = False, skip_virsh: bool = False, secure: bool = False
) -> str:
    """The one command a host runs. Only constants and a random hex boundary go into it."""
    if not re.fullmatch(r"[0-9a-f]{16,64}", boundary):
        raise ValueError("boundary must be lowercase hex")
    # one ovs-vsctl for all tables: the same raw JSON, one line per table (split_ovs_tables)
    tables = "  sec ovs-tables ovs-vsctl --timeout=5 --format=json" + "".join(
        f" -- --columns={cols} list {table}" for table, cols in OVS_TABLES.items()
    )
    return (
        _SCRIPT.replace("@BOUNDARY@", "KVMHA" + boundary)
        .replace("@PACKAGES@", " ".join(PACKAGES))
        .replace("@OVS_TABLES@", tables)
        .replace("@SKIP_LINKS@", "1" if skip_links else "")
        .replace("@SKIP_VIRSH@", "1" if skip_virsh else "")
        .replace("@SECURE@", " --security-info" if secure else "")
        # provisioning plans read every filter (a restore may need any of them)
        .replace("@ALL_FILTERS@", "1" if secure else "")
        .replace("@FILTER_DEPTH@", str(FILTER_DEPTH))
    )


class BatchOutputError(Exception):
    pass


def split_sections(output: str, boundary: str) -> dict[str, Section]:
    """Split the batch script's stdout back into sections."""
    marker = re.compile(
        r"\n?KVMHA" + re.escape(boundary) + r" (BEGIN|STDERR|END) (\S+)(?: (-?\d+))?\n"
    )
    sections: dict[str, Section] = {}
    pos = 0
    current: str | None = None
    stdout = ""
    stage = ""
    for match in marker.finditer(output):
        kind, name, rc = match.groups()
        chunk = output[pos : match.start()]
        pos = match.end()
        if kind == "BEGIN":
            current, stage = name, "out"
        elif kind == "STDERR" and current == name and stage == "out":
            stdout, stage = chunk, "err"
        elif kind == "END" and current == name and stage == "err":
            sections[name] = Section(stdout, chunk, int(rc or 0))
            current, stage = None, ""
        else:
            raise BatchOutputError(f"garbled batch output near section {name!r}")
    if current is not None:
        raise BatchOutputError(
            f"batch output ends inside section {current!r} (host gone mid-audit?)"
        )
    return sections


BATCHED = ("domain-inactive", "domain-live", "network", "nwfilter")


def split_ovs_tables(sections: dict[str, Section]) -> dict[str, Section]:
    """Split the one ``ovs-tables`` section (one JSON line per table, in OVS_TABLES order) into
    the per-table sections ``ovs-<table>`` a bundle records. If ovs-vsctl failed, or printed
    another number of lines, every table carries the failure."""
    merged = sections.get("ovs-tables")
    if merged is None:
        return sections
    out = {k: v for k, v in sections.items() if k != "ovs-tables"}
    lines = [line for line in merged.stdout.splitlines() if line.strip()]
    if merged.rc == 0 and len(lines) != len(OVS_TABLES):
        why = f"ovs-vsctl printed {len(lines)} tables, expected {len(OVS_TABLES)}"
        merged = Section("", (merged.stderr + "\n" + why).strip(), 1)
        lines = []
    for k, table in enumerate(OVS_TABLES):
        text = lines[k] + "\n" if merged.rc == 0 else ""
        out[f"ovs-{table}"] = Section(text, merged.stderr, merged.rc)
    return out


def unbatch(sections: dict[str, Section], boundary: str) -> dict[str, Section]:
    """Split each ``batch-<kind>`` section (many virsh dumps over one connection) into the
    per-UUID sections ``<kind>/<uuid>`` that a bundle records. virsh reports no exit status per
    command, so a dump that came back empty is recorded as failed, with the batch's stderr."""
    marker = re.compile("KVMHA" + re.escape(boundary) + r":([0-9a-fA-F-]+):")
    out = {k: v for k, v in sections.items() if not k.startswith("batch-")}
    for kind in BATCHED:
        batch = sections.get(f"batch-{kind}")
        if batch is None:
            continue
        pieces = marker.split(batch.stdout)
        for uuid, text in zip(pieces[1::2], pieces[2::2], strict=True):
            text = text.lstrip("\n")
            if text.endswith("\n\n"):
                text = text[:-1]  # virsh separates command outputs with a blank line
            ok = bool(text.strip())
            out[f"{kind}/{uuid.lower()}"] = Section(
                text, "" if ok else (batch.stderr.strip() or "empty output"), 0 if ok else 1
            )
    return out


# What a libvirt URI may hold (RFC 3986 characters without quotes, spaces, $, `, ;, |, ...).
# The collector passes the URI as an argument, quoted; this keeps odd ones out of reports too.
_VIRSH_URI = re.compile(r"[a-z][a-z0-9+.-]*://[A-Za-z0-9._~:@/?&=%+,\[\]-]*")


def check_virsh_uri(uri: str) -> str:
    """``uri`` if it is a plain libvirt URI (``qemu:///system``, ``qemu+ssh://u@h/system``)."""
    if not isinstance(uri, str) or len(uri) > 512 or not _VIRSH_URI.fullmatch(uri):
        raise ValueError(
            f"not a virsh URI: {uri!r} (expected driver[+transport]://[user@host]/path[?k=v], "
            "without quotes, spaces or shell characters)"
        )
    return uri


def host_name_from_spec(spec: str) -> str:
    """``ssh://root@kvm1:2222`` -> ``kvm1``; ``local://`` -> ``local``; ``replay://d/kvm-a`` -> ``kvm-a``."""
    parts = urlsplit(spec)
    if parts.scheme == "replay":
        path = (parts.netloc + parts.path).rstrip("/")
        return Path(path).name or "replay"
    if parts.scheme == "local" or not parts.scheme:
        return "local"
    return parts.hostname or parts.netloc or parts.scheme


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


UNREACHABLE_RC = 255  # what ssh returns when it cannot connect


def testinfra_host(spec: str, options: CollectOptions) -> Any:
    import testinfra

    # testinfra passes this as ssh ConnectTimeout; the whole collection has options.timeout
    kwargs: dict[str, Any] = {"timeout": int(min(options.timeout, 30))}
    if options.ssh_config:
        kwargs["ssh_config"] = options.ssh_config
    if options.ssh_identity_file:
        kwargs["ssh_identity_file"] = options.ssh_identity_file
    return testinfra.get_host(spec, **kwargs)


def collect(target: HostTarget, options: CollectOptions) -> EvidenceBundle:
    """Collect one host's evidence bundle. Never raises: failures become the bundle's status."""
    from pytest_kvmha.collect.firewall import (
        collect_firewalls,  # the firewalls' own HA configuration (issue 10)
    )

    started = time.monotonic()
    scheme = urlsplit(target.spec).scheme
    firewalls = collect_firewalls(target, options)
    if scheme == "replay":
        bundle = replay(target)
        firewalls.finish(bundle)
        return bundle
    # The bundle (and so every report and recording) only ever holds the redacted spec.
    bundle = EvidenceBundle(target.name, redact(target.spec), scheme or "local", _now())
    try:
        _collect_shell(bundle, target, options)
        if target.libvirt_uri:
            _collect_libvirt(bundle, target.libvirt_uri, secure=options.secure)
        if scheme in ("local", ""):
            _collect_links_netlink(bundle)
    except Exception as exc:  # a broken host must not stop the audit of the others
        if bundle.status == "ok":
            bundle.status = "error"
            bundle.error = f"{target.name}: collection failed: {type(exc).__name__}: {exc}"
    firewalls.finish(bundle)
    if bundle.error:
        bundle.error = redact(bundle.error)
    bundle.seconds = time.monotonic() - started
    return bundle


def _collect_shell(bundle: EvidenceBundle, target: HostTarget, options: CollectOptions) -> None:
    scheme = urlsplit(target.spec).scheme
    boundary = secrets.token_hex(12)
    script = batch_script(
        boundary,
        skip_links=scheme in ("local", ""),
        skip_virsh=bool(target.libvirt_uri),
        secure=options.secure,
    )
    # the pinned virsh URI is an argument of the fixed script ($1), validated and quoted
    args = (check_virsh_uri(target.virsh_uri),) if target.virsh_uri else ()
    command = remote_command(script, options.timeout, *args)
    host = testinfra_host(target.spec, options)
    t0 = time.monotonic()
    try:
        result, refused = run_retrying(host, command, bundle, t0 + options.timeout)
    except CollectTimeout as exc:
        bundle.round_trips += 1
        bundle.status = "unreachable"
        bundle.error = f"{target.name}: {exc}"
        return
    except Exception as exc:
        bundle.round_trips += 1
        bundle.status = "unreachable"
        bundle.error = f"{target.name}: cannot run commands: {_reason(exc)}"
        return
    bundle.round_trips += 1
    bundle.commands.append(
        {
            "command": "sh -c <batch script>",
            "rc": result.rc,
            "seconds": round(time.monotonic() - t0, 3),
        }
    )
    stdout = host_text(result.stdout_bytes)
    if f"KVMHA{boundary} BEGIN" not in stdout:
        reason = host_text(result.stderr_bytes).strip().splitlines()
        why = reason[-1] if reason else f"exit status {result.rc}"
        if refused is not None and bundle.retries:
            why = f"{refused} (after {len(bundle.retries)} retries)"
        status = "unreachable" if result.rc == UNREACHABLE_RC or not stdout else "error"
        bundle.status, bundle.error = status, f"{target.name}: {why}"
        return
    try:
        raw = split_ovs_tables(split_sections(stdout, boundary))
        bundle.sections.update(not_utf8(unbatch(raw, boundary)))
    except BatchOutputError as exc:
        bundle.status, bundle.error = "error", f"{target.name}: {exc}"
        return
    tmp = bundle.sections.pop("mktemp", None)
    if tmp is not None:  # the script could not make its private directory: nothing was read
        bundle.status = "error"
        bundle.error = f"{target.name}: collector cannot run: {tmp.stderr.strip()}"


def run_retrying(
    host: Any, command: str, bundle: EvidenceBundle, deadline: float
) -> tuple[Any, str | None]:
    """``command`` on ``host`` by :func:`run_with_deadline`, tried again with backoff while the
    SSH handshake is refused (then nothing ran on the host); bytes and retries are counted in
    ``bundle``. Returns the last result and its refusal reason (None: it was not refused)."""
    attempt = 0
    while True:
        result = run_with_deadline(host, command, max(0.1, deadline - time.monotonic()))
        bundle.bytes_sent += len(command.encode("utf-8", "surrogateescape"))
        bundle.bytes_received += len(result.stdout_bytes) + len(result.stderr_bytes)
        refused = handshake_refused(result.rc, result.stdout_bytes, result.stderr_bytes)
        delay = backoff(attempt)
        if refused is None or attempt >= MAX_RETRIES or time.monotonic() + delay >= deadline:
            return result, refused
        # Refused before login (sshd MaxStartups, a busy bastion): nothing ran on the host, so
        # trying again is safe; the bundle keeps each refusal and the wait before the next try.
        bundle.retries.append({"reason": redact(refused), "delay": round(delay, 3)})
        attempt += 1
        time.sleep(delay)


# ssh's words for a connection dropped before authentication: sshd over its MaxStartups, a
# bastion too busy to take another, a daemon restarting. Nothing ran on the host: retry.
_HANDSHAKE = (
    "connection refused",
    "connection reset by peer",
    "kex_exchange_identification",
    "ssh_exchange_identification",
    "connection closed by remote host",
)
# ...but never an answer that another try cannot change (and that must not look like a flood).
_FINAL = (
    "permission denied",
    "host key verification failed",
    "remote host identification has changed",
    "too many authentication failures",
    "could not resolve hostname",
)
MAX_RETRIES = 5
BACKOFF_BASE = 0.25  # seconds before the first retry; doubled each time, plus jitter
BACKOFF_CAP = 8.0


def handshake_refused(rc: int, stdout: bytes, stderr: bytes) -> str | None:
    """ssh's last words if the connection was refused or reset during the handshake (exit 255,
    nothing on stdout, a handshake message); None for anything else (authentication failures
    and host key mismatches included: those are final)."""
    if rc != UNREACHABLE_RC or stdout.strip():
        return None
    text = host_text(stderr)
    low = text.lower()
    if any(word in low for word in _FINAL) or not any(word in low for word in _HANDSHAKE):
        return None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else "connection refused"


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter on top: retries of many hosts refused at once by
    one sshd must not arrive at once again."""
    base = min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt))
    return base + secrets.SystemRandom().uniform(0, base)


# After the deadline the host's work must stop too, not only our wait for it: the script runs
# under the host's `timeout` (coreutils/busybox), which signals the script's whole process group
# (virsh, ovs-vsctl ...) and KILLs it KILL_AFTER seconds later. Hosts without `timeout` still get
# the batch; killing our ssh client then ends it at its next write (SIGPIPE).
KILL_AFTER = 5
_WRAPPER = (
    "s=$1; shift; if timeout -k {k} 1 true >/dev/null 2>&1; "
    'then exec timeout -k {k} {t} sh -c "$s" kvmha "$@"; else exec sh -c "$s" kvmha "$@"; fi'
)


def remote_command(script: str, timeout: float, *args: str) -> str:
    """The command line a host runs: ``script`` (with ``args`` as $1...) under ``timeout``
    when the host has one."""
    quoted = "".join(" " + shlex.quote(a) for a in args)
    seconds = max(1, math.ceil(timeout)) if math.isfinite(timeout) else 0
    if seconds == 0:
        return "sh -c " + shlex.quote(script) + (" kvmha" + quoted if args else "")
    wrapper = _WRAPPER.format(k=KILL_AFTER, t=seconds)
    return f"sh -c {shlex.quote(wrapper)} kvmha-collect {shlex.quote(script)}{quoted}"


class CollectTimeout(Exception):
    """The host did not finish within the deadline; our side of the connection was killed."""


def run_with_deadline(host: Any, command: str, timeout: float) -> Any:
    """``host.run(command)``, but stopped at ``timeout``: for the ssh and local backends the
    command runs as our own subprocess (in its own session) so that the ssh client and all it
    started can be killed; other backends run through testinfra and rely on the host's
    `timeout` (see remote_command)."""
    backend: Any = getattr(host, "backend", None)
    name = getattr(backend, "NAME", None)
    if name == "ssh" and hasattr(backend, "_build_ssh_command"):
        cmd, args = backend._build_ssh_command(backend.get_command(command))
        line = backend.quote(" ".join(cmd), *args)
    elif name == "local":
        line = backend.get_command(command)
    else:
        return host.run(command)
    proc = subprocess.Popen(
        ["/bin/sh", "-c", line],  # testinfra builds a shell command line (quoted by shlex)
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout if math.isfinite(timeout) else None)
    except subprocess.TimeoutExpired:
        _kill_session(proc)
        raise CollectTimeout(
            f"no answer within {timeout:g} s: collection stopped (our command and connection "
            "killed; the host's `timeout` ends the commands still running there)"
        ) from None
    return backend.result(proc.returncode, backend.encode(line), stdout, stderr)


def host_text(data: bytes) -> str:
    """A host's output as text: UTF-8, undecodable bytes kept as lone surrogates (PEP 383), so
    that only the sections holding them are damaged (``not_utf8``) and not the whole host. (Also
    spares testinfra's decode, which asks the host for its locale: a second round trip.)"""
    return data.decode("utf-8", "surrogateescape")


def not_utf8(sections: dict[str, Section]) -> dict[str, Section]:
    """Sections whose output is not UTF-8 become damaged sections (as in a replayed bundle)."""
    out = {}
    for name, sec in sections.items():
        bad = next((i for i, c in enumerate(sec.stdout) if "\udc80" <= c <= "\udcff"), None)
        stderr = sec.stderr.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        if bad is None:
            out[name] = Section(sec.stdout, stderr, sec.rc)
        else:
            byte = ord(sec.stdout[bad]) - 0xDC00
            why = f"{name}: output is not UTF-8 text (byte {byte:#04x} at character {bad})"
            out[name] = Section("", why, MISSING_RC)
    return out


def _reason(exc: Exception) -> str:
    """A one-line reason. testinfra raises RuntimeError(CommandResult) on ssh exit 255, whose
    repr carries the whole batch script: keep only ssh's own last words."""
    result = exc.args[0] if exc.args else None
    stderr = getattr(result, "stderr", None)
    if isinstance(stderr, str):
        lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
        rc = getattr(result, "rc", "?")
        return f"{lines[-1] if lines else 'no output'} (exit status {rc})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def _collect_libvirt(bundle: EvidenceBundle, uri: str, *, secure: bool = False) -> None:
    """libvirt sections through libvirt-python: one connection, same raw XML as virsh."""
    try:
        import libvirt
    except ImportError:
        bundle.sections["virsh-domains"] = Section(
            "", "libvirt-python is not installed (pip install 'pytest-kvmha[libvirt]')", 127
        )
        return
    bundle.sections["libvirt-uri"] = Section(f"inventory\n{uri}\n")
    t0 = time.monotonic()
    try:
        conn = libvirt.open(uri) if secure else libvirt.openReadOnly(uri)
    except libvirt.libvirtError as exc:
        bundle.sections["virsh-domains"] = Section("", f"{uri}: {exc}", 1)
        bundle.round_trips += 1
        return
    xml_flags = libvirt.VIR_DOMAIN_XML_SECURE if secure else 0
    try:
        doms = conn.listAllDomains(0)
        uuids = [d.UUIDString() for d in doms]
        active = [d.UUIDString() for d in doms if d.isActive()]
        bundle.sections["virsh-domains"] = Section("\n".join(uuids) + "\n")
        bundle.sections["virsh-active"] = Section("\n".join(active) + "\n")
        paused = [d.UUIDString() for d in doms if d.state()[0] == libvirt.VIR_DOMAIN_PAUSED]
        bundle.sections["virsh-paused"] = Section("".join(u + "\n" for u in paused))
        for d in doms:
            u = d.UUIDString()
            bundle.sections[f"domain-inactive/{u}"] = Section(
                d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | xml_flags)
            )
            if d.isActive():
                bundle.sections[f"domain-live/{u}"] = Section(d.XMLDesc(xml_flags))
        nets = conn.listAllNetworks(0)
        bundle.sections["virsh-networks"] = Section("".join(n.UUIDString() + "\n" for n in nets))
        for n in nets:
            bundle.sections[f"network/{n.UUIDString()}"] = Section(n.XMLDesc(0))
        try:
            filters = conn.listAllNWFilters(0)
        except libvirt.libvirtError as exc:  # e.g. the test driver has no nwfilter support
            bundle.sections["virsh-nwfilters"] = Section("", f"{uri}: {exc}", 1)
            filters = []
        else:
            bundle.sections["virsh-nwfilters"] = Section(
                "".join(f"{f.UUIDString()}  {f.name()}\n" for f in filters)
            )
        for f in filters:
            bundle.sections[f"nwfilter/{f.UUIDString()}"] = Section(f.XMLDesc(0))
    finally:
        conn.close()
    bundle.round_trips += 1
    bundle.commands.append(
        {"command": f"libvirt-python {uri}", "rc": 0, "seconds": round(time.monotonic() - t0, 3)}
    )


def _collect_links_netlink(bundle: EvidenceBundle) -> None:
    """Local link state through pyroute2, written in the shape of ``ip -d -j link``."""
    from pyroute2 import IPRoute

    flag_names = {
        0x1: "UP",
        0x2: "BROADCAST",
        0x8: "LOOPBACK",
        0x100: "PROMISC",
        0x1000: "MULTICAST",
    }
    links = []
    with IPRoute() as ipr:
        for msg in ipr.get_links():
            flags = msg["flags"]
            info = msg.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            entry: dict[str, Any] = {
                "ifindex": msg["index"],
                "ifname": msg.get_attr("IFLA_IFNAME"),
                "flags": [n for bit, n in flag_names.items() if flags & bit],
                "address": msg.get_attr("IFLA_ADDRESS"),
                "promiscuity": msg.get_attr("IFLA_PROMISCUITY"),
            }
            if kind:
                entry["linkinfo"] = {"info_kind": kind}
            links.append(entry)
    bundle.sections["links"] = Section(json.dumps(links))
    bundle.commands.append({"command": "pyroute2 RTM_GETLINK", "rc": 0, "seconds": 0.0})


def replay(target: HostTarget) -> EvidenceBundle:
    from pytest_kvmha.bundle.store import BundleError

    parts = urlsplit(target.spec)
    directory = Path(parts.netloc + parts.path)
    try:
        bundle = EvidenceBundle.read(directory)
    except BundleError as exc:
        return EvidenceBundle(
            target.name, redact(target.spec), "replay", _now(), status="error", error=str(exc)
        )
    bundle.host = target.name
    bundle.spec = redact(target.spec)
    return bundle


Collect = Callable[[HostTarget, CollectOptions], EvidenceBundle]
# progress(done, total, unreachable): called once per host as its bundle arrives
Progress = Callable[[int, int, int], None]
# on_bundle(index, bundle): called once per host as its bundle arrives, in the collecting thread
# (so a host is parsed while the others are still being collected); calls are serialized.
OnBundle = Callable[[int, EvidenceBundle], None]


def collect_all(
    targets: list[HostTarget],
    options: CollectOptions,
    collect_one: Collect = collect,
    progress: Progress | None = None,
    on_bundle: OnBundle | None = None,
) -> list[EvidenceBundle]:
    """Collect every host, at most ``options.max_parallel`` at once, keeping the input order.

    Each host gets ``options.timeout`` seconds from the moment its collection starts: one that
    connects and then hangs becomes an ``unreachable`` bundle, its slot goes to a fresh thread,
    and the others are still audited. (Daemon threads: a stuck connection cannot keep pytest
    from exiting.) ``progress`` is told as each host is done (the caller decides whether and
    where to show it: this module does no terminal output)."""
    import threading

    total = len(targets)
    if not isinstance(options.max_parallel, int) or options.max_parallel < 1:
        raise ValueError(f"max_parallel must be a positive integer, not {options.max_parallel!r}")
    results: list[EvidenceBundle | None] = [None] * total
    cond = threading.Condition()  # guards the bookkeeping below
    callbacks = threading.Lock()  # one progress/on_bundle call at a time, none after the end
    started: dict[int, float] = {}
    claimed: set[int] = set()  # a result (real or timed out) is being delivered
    finished: set[int] = set()
    abandoned: set[int] = set()  # timed out: its thread's late answer is dropped
    unreachable = 0
    next_index = 0
    failures: list[Exception] = []

    def deliver(i: int, bundle: EvidenceBundle) -> None:
        nonlocal unreachable
        with cond:
            if i in claimed:
                return
            claimed.add(i)
        with callbacks:
            results[i] = bundle
            unreachable += bundle.status == "unreachable"
            if on_bundle is not None:
                try:
                    on_bundle(i, bundle)
                except Exception as exc:  # re-raised in the caller's thread at the end
                    failures.append(exc)
            if progress is not None:
                progress(len(finished) + 1, total, unreachable)
            with cond:
                finished.add(i)
                cond.notify_all()

    def work() -> None:
        nonlocal next_index
        while True:
            with cond:
                if next_index >= total:
                    return
                i = next_index
                next_index += 1
                started[i] = time.monotonic()
            bundle = collect_one(targets[i], options)
            deliver(i, bundle)
            with cond:
                if i in abandoned:  # a fresh thread took this slot when it timed out
                    return

    def spawn() -> None:
        threading.Thread(target=work, daemon=True, name="kvmha-collect").start()

    for _ in range(min(options.max_parallel, total)):
        spawn()
    # The grace lets each collector kill what it started and report that itself.
    limit = options.timeout + KILL_AFTER
    with cond:
        while len(finished) < total:
            now = time.monotonic()
            overdue = [
                i
                for i, t in started.items()
                if i not in claimed and now >= t + limit and i not in abandoned
            ]
            for i in overdue:
                abandoned.add(i)
            if overdue:
                cond.release()
                try:
                    for i in overdue:
                        target = targets[i]
                        deliver(
                            i,
                            EvidenceBundle(
                                target.name,
                                redact(target.spec),
                                urlsplit(target.spec).scheme or "local",
                                _now(),
                                status="unreachable",
                                error=f"{target.name}: no answer within {options.timeout:g} s "
                                "(host gone mid-audit?)",
                            ),
                        )
                        spawn()  # the stuck thread keeps its connection; the queue goes on
                finally:
                    cond.acquire()
                continue
            waits = [t + limit - now for i, t in started.items() if i not in claimed]
            cond.wait(max(0.01, min(waits, default=1.0)))
    if failures:
        raise failures[0]
    return [r for r in results if r is not None]


# --- the trace phase (issue 11): ONE more round trip per host holding ports of audited clusters
# Bridge names and flows are planned from facts (traceplan) and reach the host only as quoted
# positional arguments of this fixed script, after the regexes below; the script re-checks the
# key (a safe section name) itself.
_TRACE_SCRIPT = (
    _PREAMBLE
    + r"""
if command -v ovs-appctl >/dev/null 2>&1; then A=ovs-appctl; else A=kvmha_no_appctl; fi
kvmha_no_appctl() { echo "ovs-appctl: command not found" >&2; return 127; }
sec trace-dpif "$A" --timeout=5 dpif/show
while [ $# -ge 3 ]; do
  k=$1; br=$2; fl=$3; shift 3
  case $k in t*[!0-9a-f]*|t|[!t]*) continue;; esac
  sec "trace/$k" "$A" --timeout=5 ofproto/trace "$br" "$fl"
done
"""
)


def trace_script(boundary: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{16,64}", boundary):
        raise ValueError("boundary must be lowercase hex")
    return _TRACE_SCRIPT.replace("@BOUNDARY@", "KVMHA" + boundary)


def trace_arguments(specs: list[tuple[str, str, str]]) -> list[str]:
    """(key, bridge, flow) triples as the script's positional arguments, each validated."""
    from pytest_kvmha.parse.trace import BRIDGE_NAME, FLOW, TRACE_KEY

    args: list[str] = []
    for key, bridge, flow in specs:
        if not (
            TRACE_KEY.fullmatch(key) and BRIDGE_NAME.fullmatch(bridge) and FLOW.fullmatch(flow)
        ):
            raise ValueError(f"refusing to trace {bridge!r} {flow!r}: not a plain bridge/flow")
        args += [key, bridge, flow]
    return args


def collect_traces(
    bundle: EvidenceBundle,
    target: HostTarget,
    options: CollectOptions,
    specs: list[tuple[str, str, str]],
) -> None:
    """Run ``ofproto/trace`` for each (key, bridge, flow) and ``dpif/show`` on the host, in one
    round trip, adding sections ``trace-dpif`` and ``trace/<key>`` to ``bundle``. Never raises:
    what could not be traced stays missing, and the trace check reports it as an error."""
    t0 = time.monotonic()
    try:
        args = trace_arguments(specs)
        boundary = secrets.token_hex(12)
        command = remote_command(trace_script(boundary), options.timeout, *args)
        host = testinfra_host(target.spec, options)
        result, _ = run_retrying(host, command, bundle, t0 + options.timeout)
    except Exception as exc:  # unreachable now, timeout, refused argument: the check errs
        bundle.round_trips += 1
        bundle.commands.append(
            {"command": "sh -c <trace script>", "rc": None, "error": redact(_reason(exc))}
        )
        return
    bundle.round_trips += 1
    bundle.commands.append(
        {
            "command": "sh -c <trace script>",
            "rc": result.rc,
            "traces": len(specs),
            "seconds": round(time.monotonic() - t0, 3),
        }
    )
    try:
        sections = split_sections(host_text(result.stdout_bytes), boundary)
    except BatchOutputError:
        return
    sections.pop("mktemp", None)
    bundle.sections.update(
        {k: v for k, v in not_utf8(sections).items() if k == "trace-dpif" or k.startswith("trace/")}
    )
