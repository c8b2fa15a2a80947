"""Every secret the stripper knows is gone from every output: the stored section, the terminal,
the JSON, Markdown, HTML and JUnit reports, a recording; and a parse error never echoes one.

The keys come from the vendor modules (``pytest_kvmha.vendors``), the values from hypothesis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_kvmha.parse.cos_core import parse_cos_show
from pytest_kvmha.parse.evidence import ConfigParseError
from pytest_kvmha.parse.fortios import parse_fortios
from pytest_kvmha.parse.secrets import MARKER, strip_secrets
from pytest_kvmha.vendors.fortigate import SECRET_KEYS

DATA = Path(__file__).parent.parent / "data" / "fwconfig"
BUNDLES = Path(__file__).parent.parent / "bundles"

# every FortiOS key the stripper knows by name, and some it knows by what the name says
FORTI_KEYS = sorted(SECRET_KEYS) + ["ha-password", "auth-secret", "passphrase", "admin-pwd"]
COS_KEYS = [
    "PSK", "PSKAscii", "PreSharedKey", "PreShared-Key", "SharedSecret", "SharedSecret2",
    "Password", "Passphrase", "Key", "AuthKey", "PrivKey", "Community",
]  # fmt: skip
COS_SHAPES = ("row", "next-line", "continued")
FORTI_SHAPES = ("quoted", "bare")

# A generated secret: no line break (a value is one line in both formats), no quote or backslash
# (the FortiOS writer below escapes them itself only in the quoted shape), distinctive enough
# (a prefix) that finding it in an output is never chance.
_CHARS = st.characters(
    codec="utf-8", exclude_categories=["Cc", "Cs", "Zl", "Zp"], exclude_characters="\"'\\"
)
secret_values = st.builds(
    lambda body: "Sx9" + body.strip() + "9xS", st.text(_CHARS, min_size=1, max_size=24)
)


def forti_line(key: str, value: str, shape: str) -> str:
    if shape == "bare":
        value = value.replace(" ", "_")
        return f"        set {key} {value}"
    return f'        set {key} "{value}"'


def cos_rows(key: str, value: str, shape: str) -> list[str]:
    pad = " " * 26
    if shape == "row":
        return [f"{key:>24}: {value}"]
    if shape == "next-line":  # the value starts on the next line (PSK: empty)
        return [f"{key:>24}:", pad + value]
    # a value over continuation lines, one of them looking like a row
    return [f"{key:>24}: first half", pad + "horse: " + value, pad + value]


def forti_text(items: list[tuple[str, str, str]], community: str) -> str:
    lines = ["config system admin", '    edit "ops"']
    lines += [forti_line(k, v, s) for k, v, s in items]
    lines += ["    next", "end", "config system snmp community", "    edit 1"]
    lines += [f'        set name "{community}"', "        set status enable", "    next", "end"]
    return (DATA / "fgt-a.conf").read_text() + "\n".join(lines) + "\n"


def cos_text(items: list[tuple[str, str, str]]) -> str:
    lines = ["", "Device:/> show IPsecTunnel", "", f"{'Property':>24}  Value", "-" * 24 + "  -----"]
    lines.append(f"{'Name':>24}: t1")
    for k, v, s in items:
        lines += cos_rows(k, v, s)
    lines.append(f"{'Comments':>24}: <empty>")
    return (DATA / "cos-master.txt").read_text().rstrip("\n") + "\n" + "\n".join(lines) + "\n"


forti_items = st.lists(
    st.tuples(st.sampled_from(FORTI_KEYS), secret_values, st.sampled_from(FORTI_SHAPES)),
    min_size=1,
    max_size=8,
)
cos_items = st.lists(
    st.tuples(st.sampled_from(COS_KEYS), secret_values, st.sampled_from(COS_SHAPES)),
    min_size=1,
    max_size=8,
)


def _leaks(text: str, values: list[str]) -> list[str]:
    return [v for v in values if v in text]


@settings(max_examples=150, deadline=None)
@given(items=forti_items, community=secret_values)
def test_fortios_secrets_stripped_and_the_config_still_parses(
    items: list[tuple[str, str, str]], community: str
) -> None:
    text = forti_text(items, community)
    stripped = strip_secrets(text)
    values = [v if s == "quoted" else v.replace(" ", "_") for _, v, s in items] + [community]
    assert not _leaks(stripped, values)
    assert strip_secrets(stripped) == stripped
    parse_fortios(stripped)  # stripping keeps the text well-formed


@settings(max_examples=150, deadline=None)
@given(items=cos_items)
def test_cos_secrets_stripped_with_their_continuations(items: list[tuple[str, str, str]]) -> None:
    seen: set[str] = set()
    items = [i for i in items if not (i[0] in seen or seen.add(i[0]))]  # one row per property
    text = cos_text(items)
    assert len(parse_cos_show(text)) == 4  # the test's own text is well-formed
    stripped = strip_secrets(text)
    assert not _leaks(stripped, [v for _, v, _ in items] + ["horse"])
    assert strip_secrets(stripped) == stripped
    tunnel = parse_cos_show(stripped)[-1].properties
    assert tunnel["Name"] == "t1" and tunnel["Comments"] == ""
    assert all(tunnel[k] == MARKER for k, _, _ in items)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("config system snmp user\n edit u\n  set auth-pwd plainAuthPw\n next\nend\n", "plainAuthPw"),
        ("config system snmp user\n edit u\n  set priv-pwd plainPrivPw\n next\nend\n", "plainPrivPw"),
        ("config system api-user\n edit a\n  set api-key apiKeyValue\n next\nend\n", "apiKeyValue"),
        ("config vpn ipsec manualkey\n edit m\n  set authkey 0a-1b-2c\n next\nend\n", "0a-1b-2c"),
        ("config vpn ipsec manualkey\n edit m\n  set enckey 3d-4e-5f\n next\nend\n", "3d-4e-5f"),
        ("config router key-chain\n edit k\n  config key\n   edit 1\n    set key-string kStr\n"
         "   next\n  end\n next\nend\n", "kStr"),
        ('config system snmp community\n edit 1\n  set name "pubCommunity"\n next\nend\n',
         "pubCommunity"),
        ("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGPgpKey\n=ab12\n"
         "-----END PGP PRIVATE KEY BLOCK-----\n", "lQOYBGPgpKey"),
        ("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: k\nPublic-Lines: 1\n"
         "AAAAC3pub\nPrivate-Lines: 1\nAAAAIPuttyPriv\nPrivate-MAC: 0123abcd\n", "AAAAIPuttyPriv"),
        ("   SharedSecret: first half\n                 horse: battery-staple\n", "battery"),
        ("            PSK:\n                 nextLineSecret\n", "nextLineSecret"),
        ("  SharedSecret2: second server\n", "second server"),
        ("  PreShared-Key: hyphenated\n", "hyphenated"),
        ("            Key: keyRow\n        AuthKey: authRow\n      Community: commRow\n", "Row"),
        ("add IPsecTunnel t PSK='single quoted' Name=t\n", "quoted"),
        ("add RadiusServer r SharedSecret2=s2secret\n", "s2secret"),
    ],
)  # fmt: skip
def test_secret_forms_stripped(text: str, secret: str) -> None:
    stripped = strip_secrets(text)
    assert secret not in stripped and MARKER in stripped


def test_a_parse_error_never_echoes_a_secret_line() -> None:
    text = 'config system admin\n    edit "x"\n        set "password""JOINEDSECRETVALUE"\n'
    stripped = strip_secrets(text + "    next\nend\n")
    assert "JOINEDSECRETVALUE" not in stripped
    with pytest.raises(ConfigParseError) as info:  # the parser itself does not echo it either
        parse_fortios(text + "    next\nend\n")
    assert "JOINED" not in str(info.value) and "a secret key" in str(info.value)


# --- every output -------------------------------------------------------------------------------


def _inventory(directory: Path, vendor: str, a: Path, b: Path) -> Path:
    hosts = {h: "replay://" + str(BUNDLES / "two-ok" / h) for h in ("kvm-a", "kvm-b")}
    lines = [f"[hosts.{h}]\nspec = {json.dumps(s)}" for h, s in hosts.items()]
    lines += [f"[clusters.edge-fw]\nvendor = {json.dumps(vendor)}\nmembers = ["]
    for host, dom, role, path in (("kvm-a", "fw-a", "master", a), ("kvm-b", "fw-b", "slave", b)):
        lines.append(
            f'  {{ host = "{host}", domain = "{dom}", role = "{role}", '
            f"config = {json.dumps(str(path))} }},"
        )
    lines.append("]")
    path = directory / "clusters.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _outputs(pytester: pytest.Pytester, inventory: Path, run: int) -> list[str]:
    out = f"out{run}"
    result = pytester.runpytest(
        f"--kvmha-inventory={inventory}",
        f"--kvmha-report={out}/r.json",
        f"--kvmha-report-md={out}/r.md",
        f"--kvmha-report-html={out}/r.html",
        f"--junit-xml={out}/j.xml",
        f"--kvmha-record={out}/rec",
        "-rA",
        "-v",
    )
    texts = [result.stdout.str() + result.stderr.str()]
    texts += [
        p.read_text(errors="replace") for p in (pytester.path / out).rglob("*") if p.is_file()
    ]
    assert any("KVMHA-FW-001" in t for t in texts[1:])  # the reports were written
    return texts


@settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
@given(forti=forti_items, community=secret_values, cos=cos_items, joined=secret_values)
def test_no_generated_secret_reaches_any_output(
    pytester: pytest.Pytester,
    forti: list[tuple[str, str, str]],
    community: str,
    cos: list[tuple[str, str, str]],
    joined: str,
) -> None:
    run = len(list(pytester.path.glob("out*")))
    seen: set[str] = set()
    cos = [i for i in cos if not (i[0] in seen or seen.add(i[0]))]
    a = pytester.path / f"fgt-a-{run}.conf"
    a.write_text(forti_text(forti, community))
    b = pytester.path / f"fgt-b-{run}.conf"  # malformed: a parse error names its line
    b.write_text(
        (DATA / "fgt-b.conf").read_text()
        + f'config system admin\n    edit "x"\n        set "password""{joined}"\n'
    )
    values = [v if s == "quoted" else v.replace(" ", "_") for _, v, s in forti]
    values += [community, joined]
    for text in _outputs(pytester, _inventory(pytester.path, "fortigate", a, b), run):
        assert not _leaks(text, values)
    ca = pytester.path / f"cos-a-{run}.txt"
    ca.write_text(cos_text(cos))
    cb = pytester.path / f"cos-b-{run}.txt"  # malformed: a CLI line outside any table
    cb.write_text((DATA / "cos-slave.txt").read_text() + f"\nadd IPsecTunnel t PSK='{joined}'\n")
    for text in _outputs(pytester, _inventory(pytester.path, "cos-core", ca, cb), run + 100):
        assert not _leaks(text, [v for _, v, _ in cos] + [joined])
