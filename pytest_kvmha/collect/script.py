"""The fixed shell scripts a host runs: the batch (every shell-level fact in ONE remote command)
and the trace phase (``ofproto/trace`` and ``dpif/show``).

Their output is split into sections by a random boundary (:mod:`pytest_kvmha.collect.framing`).
No name taken from a host or an inventory is ever put into a script; the batch reads domain,
network and filter UUIDs on the host itself and quotes them there, and the few values the
collector passes (a pinned virsh URI, trace arguments) are validated, quoted positional arguments.
The section names they print are those of :mod:`pytest_kvmha.bundle.contract`.
"""

from __future__ import annotations

import math

from pytest_kvmha.bundle.contract import BOUNDARY_HEX, BOUNDARY_PREFIX, OVS_COLUMNS

# ovs-vsctl's --columns argument of each table
OVS_TABLES = {table: ",".join(columns) for table, columns in OVS_COLUMNS.items()}
PACKAGES = ("bridge-utils", "openvswitch-switch", "openvswitch")

# What both host scripts start with: a private directory, the section markers, the sec helper.
_PREAMBLE = r"""
LC_ALL=C; export LC_ALL
PATH=$PATH:/usr/sbin:/sbin:/usr/local/sbin; export PATH
set -f  # unquoted lists (UUIDs) are split, never globbed
B=@BOUNDARY@
# A run killed past its deadline (SIGKILL, or SIGTERM in dash) runs no trap and leaves its
# directory: each run first removes this collector's own leftovers, by their marker name, owner
# and age (older than any run may last), never anything else.
find "${TMPDIR:-/tmp}/" -maxdepth 1 -type d -name 'kvmha-collect.??????' -user "$(id -u)" \
  -mmin +@STALE_MINUTES@ -exec rm -rf {} + 2>/dev/null
# A private directory from mktemp only: a guessable /tmp name could be a planted symlink.
if ! T=$(mktemp -d "${TMPDIR:-/tmp}/kvmha-collect.XXXXXX" 2>&1) || [ ! -d "$T" ]; then
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
  sec ovs-bonds ovs-appctl --timeout=5 bond/show
  sec ovs-lacp ovs-appctl --timeout=5 lacp/show
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


def stale_minutes(timeout: float) -> int:
    """After how many minutes a collector's directory is a leftover: longer than a run under
    ``timeout`` lasts (its kill grace and find's whole-minute rounding included)."""
    if not math.isfinite(timeout):
        return 24 * 60
    return max(1, math.ceil(timeout / 60)) + 1


def batch_script(
    boundary: str,
    *,
    skip_links: bool = False,
    skip_virsh: bool = False,
    secure: bool = False,
    timeout: float = 300.0,
) -> str:
    """The one command a host runs. Only constants and a random hex boundary go into it."""
    _check_boundary(boundary)
    # one ovs-vsctl for all tables: the same raw JSON, one line per table (split_ovs_tables)
    tables = "  sec ovs-tables ovs-vsctl --timeout=5 --format=json" + "".join(
        f" -- --columns={cols} list {table}" for table, cols in OVS_TABLES.items()
    )
    return (
        _SCRIPT.replace("@BOUNDARY@", BOUNDARY_PREFIX + boundary)
        .replace("@PACKAGES@", " ".join(PACKAGES))
        .replace("@OVS_TABLES@", tables)
        .replace("@SKIP_LINKS@", "1" if skip_links else "")
        .replace("@SKIP_VIRSH@", "1" if skip_virsh else "")
        .replace("@SECURE@", " --security-info" if secure else "")
        # provisioning plans read every filter (a restore may need any of them)
        .replace("@ALL_FILTERS@", "1" if secure else "")
        .replace("@FILTER_DEPTH@", str(FILTER_DEPTH))
        .replace("@STALE_MINUTES@", str(stale_minutes(timeout)))
    )


# The trace phase: ONE more round trip per host holding ports of audited clusters. Bridge names
# and flows are planned from facts (traceplan) and reach the host only as quoted positional
# arguments of this fixed script, after the contract's patterns; the script re-checks the key
# (a safe section name) itself.
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


def trace_script(boundary: str, timeout: float = 300.0) -> str:
    _check_boundary(boundary)
    return _TRACE_SCRIPT.replace("@BOUNDARY@", BOUNDARY_PREFIX + boundary).replace(
        "@STALE_MINUTES@", str(stale_minutes(timeout))
    )


def _check_boundary(boundary: str) -> None:
    if not BOUNDARY_HEX.fullmatch(boundary):
        raise ValueError("boundary must be lowercase hex")
