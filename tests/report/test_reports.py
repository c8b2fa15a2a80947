"""Reports people and tools read: JSON run metadata, the HTML report, JUnit context, the check
catalogue (-v, JSON), site-specific checks through entry points, packaging metadata."""

from __future__ import annotations

import json
import re
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from lxml import html as lxml_html

import pytest_kvmha
from pytest_kvmha.bundle.store import EvidenceBundle, Section
from pytest_kvmha.model import discover_checks

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
SCRIPT = "<script>window.kvmhaPwned=1</script>"
IMG = "<img src=x onerror=window.kvmhaPwned=2>"


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> Path:
    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", pytester.path / "clusters.toml")
    return pytester.path / "clusters.toml"


def hostile_hosts(directory: Path) -> list[str]:
    """The demo's two hosts recorded under hostile names (a host's name is its bundle's
    directory for replay://): --kvmha-host options for them."""
    img, script = directory / "hb" / IMG, directory / "hb" / "kvm-b<script>window.kvmhaPwned=2<"
    shutil.copytree(EXAMPLES / "bundles" / "kvm-a", img)
    shutil.copytree(EXAMPLES / "bundles" / "kvm-b", script)
    return [f"--kvmha-host=replay://{img}", f"--kvmha-host=replay://{script}"]


# --- JSON report: run metadata and bundle digests -------------------------------------------


def test_json_report_gains_run_metadata_and_bundle_digests(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    pytester.runpytest(f"--kvmha-inventory={recorded}", "--kvmha-report=r.json")
    r = json.loads((pytester.path / "r.json").read_text())
    assert r["schema"] == "kvmha-report/1"  # additive: same schema
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["generated_at"])
    assert r["tool_version"] == pytest_kvmha.__version__ == metadata.version("pytest-kvmha")
    assert isinstance(r["duration_s"], float) and 0 <= r["duration_s"] < 120
    for h in r["hosts"]:
        bundle = EvidenceBundle.read(pytester.path / "bundles" / h["name"])
        assert h["bundle_sha256"] == bundle.sha256()
        assert re.fullmatch(r"[0-9a-f]{64}", h["bundle_sha256"])
    assert r["hosts"][0]["bundle_sha256"] != r["hosts"][1]["bundle_sha256"]


def test_bundle_digest_covers_the_evidence_not_the_order_or_time(tmp_path: Path) -> None:
    def bundle(sections: dict[str, Section], when: str = "2026-01-01T00:00:00Z") -> EvidenceBundle:
        return EvidenceBundle("h", "ssh://h", "ssh", when, sections=sections)

    a = {"packages": Section("bridge-utils\n"), "ovs-Bridge": Section("{}", "warn", 0)}
    base = bundle(a).sha256()
    assert bundle(dict(reversed(a.items())), when="2027-01-01T00:00:00Z").sha256() == base
    assert bundle({**a, "packages": Section("bridge-utils \n")}).sha256() != base
    assert bundle({**a, "ovs-Bridge": Section("{}", "warn", 1)}).sha256() != base
    assert bundle({**a, "ovs-Bridge": Section("{}", "", 0)}).sha256() != base
    # framing: moving bytes from one field to the next changes the digest
    assert bundle({"ab": Section("c")}).sha256() != bundle({"a": Section("bc")}).sha256()
    # a recording replays to the same digest
    assert EvidenceBundle.read(bundle(a).write(tmp_path / "h")).sha256() == base


# --- HTML report ----------------------------------------------------------------------------


def page(path: Path) -> Any:
    return lxml_html.fromstring(path.read_text(encoding="utf-8"))


def matrix_column(table: Any, column: str) -> dict[str, str]:
    """check id -> the text of its cell in ``column`` of the (first) matrix under ``table``."""
    heads = [c.text_content() for c in table.xpath(".//table[@class='matrix']//thead//th")]
    k = heads.index(column)
    return {
        row.get("data-check"): row.xpath("./td")[k - 1].text_content().strip()
        for row in table.xpath(".//table[@class='matrix']/tbody/tr")
    }


def test_html_report_from_the_audit(pytester: pytest.Pytester, recorded: Path) -> None:
    result = pytester.runpytest(
        f"--kvmha-inventory={recorded}", "--kvmha-report=r.json", "--kvmha-report-html=r.html"
    )
    result.stdout.fnmatch_lines(["kvmha report: r.html"])
    text = (pytester.path / "r.html").read_text(encoding="utf-8")
    doc = lxml_html.fromstring(text)
    report = json.loads((pytester.path / "r.json").read_text())
    # self-contained: no script, no external reference of any kind
    assert doc.xpath("//script|//link|//img|//iframe|//object|//*[@src]") == []
    assert not re.search(r"(?i)(https?:|//)[^ ]*\.(css|js|png|woff)|url\(", text)
    verdict = doc.get_element_by_id("verdict").text_content()
    assert "Gate failed" in verdict and "fail-on medium" in verdict
    assert "4 findings at or above the threshold" in " ".join(verdict.split())
    # run metadata and each host's bundle digest
    for h in report["hosts"]:
        row = doc.xpath(f"//table[@class='hosts']//tr[th='{h['name']}']")[0].text_content()
        assert h["bundle_sha256"] in row and h["spec"] in row
    assert report["generated_at"] in text and report["tool_version"] in text
    # the matrix: a row per check (its title beside it), a column per pair, text marks
    cluster = next(
        s
        for s in doc.xpath("//section[contains(@class,'cluster')]")
        if "dmz-fw" in s.findtext("h3")
    )
    assert [c.text_content() for c in cluster.xpath(".//thead//th")] == [
        "check",
        "Dmz1",
        "members, hosts, cluster",
    ]
    marks = matrix_column(cluster, "Dmz1")
    assert marks["KVMHA-VIRT-002"] == "✗ fail" and marks["KVMHA-OVS-002"] == "✓ pass"
    assert "Both NICs of a pair have the same PCI address" in (
        cluster.xpath(".//tr[@data-check='KVMHA-VIRT-002']/th")[0].text_content()
    )
    # a failure with expected/found and its remediation, XML shown as text
    virt = next(a for a in doc.xpath("//article") if "KVMHA-VIRT-002" in a.findtext(".//h3/code"))
    assert virt.xpath(".//dd[@class='expected']")[0].text_content().startswith("the same address")
    assert "<address type='pci' domain='0x0000' bus='0x00' slot='0x03'" in (
        virt.xpath(".//div[@class='remediation']/pre")[0].text_content()
    )
    # below the threshold: shown, marked as not gating
    topo = next(a for a in doc.xpath("//article") if "KVMHA-TOPO-002" in a.text_content())
    assert "not gating" in topo.text_content()


def test_html_report_ini_twin_is_relative_to_the_ini_file(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    (pytester.path / "sub").mkdir()
    pytester.makeini(
        f"[pytest]\nkvmha_inventory = clusters.toml\nkvmha_report_html = out/{recorded.stem}.html\n"
    )
    pytester.runpytest("--rootdir", str(pytester.path), "--kvmha-audit", str(pytester.path / "sub"))
    assert (pytester.path / "out" / "clusters.html").is_file()


def test_html_report_passes_and_shows_whatif_and_baseline(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    pytester.runpytest(f"--kvmha-inventory={recorded}", "--kvmha-report=before.json")
    before = json.loads((pytester.path / "before.json").read_text())
    for f in before["findings"]:  # pretend that VIRT-003 passed before: now "new"
        if f["check"] == "KVMHA-VIRT-003":
            f["status"] = "pass"
    (pytester.path / "before.json").write_text(json.dumps(before))
    pytester.runpytest(
        f"--kvmha-inventory={recorded}",
        "--kvmha-fail-on=critical",
        "--kvmha-baseline=before.json",
        "--kvmha-report-html=r.html",
    )
    doc = page(pytester.path / "r.html")
    assert "Gate passed" in doc.get_element_by_id("verdict").text_content()
    baseline = doc.xpath("//h2[@id='baseline']/following-sibling::section[1]")[0]
    new = baseline.xpath(".//div[h3='New']")[0].text_content()
    assert "KVMHA-VIRT-003[Dmz1]" in new
    assert doc.xpath("//h2[@id='whatif']") == []  # no plan given: no what-if section


def test_html_report_whatif_section(pytester: pytest.Pytester, recorded: Path) -> None:
    # the demo inventory as the wanted state: one define step for dmz-b fixes three findings
    pytester.runpytest(
        f"--kvmha-inventory={recorded}",
        f"--kvmha-plan={recorded}",
        "--kvmha-report=r.json",
        "--kvmha-report-html=r.html",
    )
    whatif = json.loads((pytester.path / "r.json").read_text())["whatif"]
    assert len(whatif["steps"]) == 1 and len(whatif["fixed"]) == 3
    doc = page(pytester.path / "r.html")
    section = doc.xpath("//h2[@id='whatif']/following-sibling::section[1]")[0]
    steps = section.xpath(".//ol[@class='steps']/li")
    assert len(steps) == 1
    assert whatif["steps"][0]["command"] in steps[0].xpath(".//pre")[0].text_content()
    assert whatif["steps"][0]["reason"] in steps[0].text_content()
    fixed = section.xpath(".//div[h3='Fixed']")[0].text_content()
    assert all(f"{k['check']}[{k['subject']}]" in fixed for k in whatif["fixed"])
    unchanged = section.xpath(".//div[h3='Unchanged (still failing)']")[0].text_content()
    assert "KVMHA-PKG-001[kvm-b]" in unchanged


def test_html_escapes_host_derived_names(pytester: pytest.Pytester) -> None:
    pytester.runpytest(*hostile_hosts(pytester.path), "--kvmha-report-html=h.html")
    text = (pytester.path / "h.html").read_text(encoding="utf-8")
    doc = lxml_html.fromstring(text)
    assert doc.xpath("//script|//img") == []
    assert IMG in doc.text_content()
    assert "kvm-b<script>window.kvmhaPwned=2<" in doc.text_content()


def test_html_escapes_every_report_field() -> None:
    """Every string of the report dict, hostile: none becomes markup."""
    from pytest_kvmha.report.html import render_html

    bad = SCRIPT + IMG + "\"'&"
    finding = {
        "check": "KVMHA-X" + bad,
        "title": bad,
        "severity": "high",
        "status": "fail",
        "host": bad,
        "cluster": bad,
        "subject": bad,
        "detail": bad,
        "expected": bad,
        "found": bad,
        "remediation": bad,
        "source": bad,
        "nodeid": bad,
    }
    key = {"check": bad, "host": bad, "cluster": bad, "subject": bad}
    report = {
        "schema": "kvmha-report/1",
        "generated_at": bad,
        "tool_version": bad,
        "duration_s": 1.0,
        "fail_on": "medium",
        "hosts": [
            {
                "name": bad,
                "spec": bad,
                "status": "unreachable",
                "error": bad,
                "problems": {bad: bad},
                "round_trips": 1,
                "bundle_sha256": bad,
            }
        ],
        "clusters": [
            {
                "name": bad,
                "vendor": bad,
                "heartbeat": bad,
                "discovered": True,
                "members": [{"host": bad, "domain": bad, "role": bad}],
                "pairs": [{"name": bad, "bridge": bad, "vlan": None}],
            }
        ],
        "findings": [finding, {**finding, "cluster": None, "status": "error"}],
        "summary": {"pass": 0, "fail": 1, "error": 1, "skip": 0},
        "errors": [bad],
        "whatif": {
            "steps": [{"host": bad, "command": bad, "reason": bad}],
            "refused": [bad],
            "notes": [bad],
            "findings": [],
            "fixed": [key],
            "introduced": [{**key, "step": 1}],
            "unchanged": [key],
        },
        "baseline": {"path": bad, "new": [key], "resolved": [key], "unchanged": [key]},
    }
    text = render_html(report)
    doc = lxml_html.fromstring(text)
    assert doc.xpath("//script|//img") == []
    assert "onerror" not in " ".join(str(a) for e in doc.iter() for a in e.attrib)
    assert text.count("&lt;script&gt;") >= 30
    assert "Gate failed" in doc.get_element_by_id("verdict").text_content()


# --- JUnit ----------------------------------------------------------------------------------


def cases(path: Path) -> dict[str, Any]:
    tree = etree.parse(str(path))
    return {f"{c.get('classname')}::{c.get('name')}": c for c in tree.iter("testcase")}


def props(case: Any) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in case.iter("property")}


def test_junit_classname_properties_and_messages(pytester: pytest.Pytester, recorded: Path) -> None:
    pytester.makepyfile(test_other="def test_plain(): pass")
    pytester.runpytest(
        f"--kvmha-inventory={recorded}", "--junitxml=j.xml", "--kvmha-audit", "test_other.py"
    )
    got = cases(pytester.path / "j.xml")
    assert "test_other::test_plain" in got  # other tests keep pytest's own naming
    virt = got["dmz-fw::KVMHA-VIRT-002[Dmz1]"]
    p = props(virt)
    assert p == {
        "check": "KVMHA-VIRT-002",
        "title": "Both NICs of a pair have the same PCI address",
        "severity": "high",
        "status": "fail",
        "host": "",
        "cluster": "dmz-fw",
        "subject": "Dmz1",
        "expected": p["expected"],
        "found": p["found"],
        "detail": p["detail"],
        "nodeid": "kvmha/dmz-fw/KVMHA-VIRT-002[Dmz1]",
        "gating": "true",
        "fail_on": "medium",
    }
    assert p["expected"].startswith("the same address") and "0000:00:05.0" in p["found"]
    assert virt.find("failure").get("message") == p["detail"]
    assert p["detail"].startswith("pair Dmz1: PCI addresses differ")
    # a host check: classname is the host
    pkg = got["kvm-b::KVMHA-PKG-001[kvm-b]"]
    assert pkg.find("failure").get("message") == "bridge-utils is installed on kvm-b (dpkg)"
    # below the threshold: passes, but says so
    topo = got["dmz-fw::KVMHA-TOPO-002[dmz-fw]"]
    assert topo.find("failure") is None
    assert props(topo)["gating"] == "false" and props(topo)["status"] == "fail"
    out = topo.find("system-out").text
    assert "below --kvmha-fail-on=medium" in out and props(topo)["detail"] in out
    # a pass has no system-out; a skip keeps its reason
    assert got["edge-fw::KVMHA-VLAN-001[If1]"].find("system-out") is None
    # 56, and the switch checks: OVS-003 and OVS-005 per pair (3), OVS-004 per cluster host (3),
    # KVMHA-SRIOV-001 per member NIC (6), less the firewall-config checks that are no items (no
    # configs declared)
    assert len([k for k in got if k.startswith(("edge-fw::", "dmz-fw::", "kvm-"))]) == 59
    # a segment's finding (about several clusters): class "segment"
    seg = got["segment::KVMHA-ID-001[vlan101@kvm-a+kvm-b]"]
    assert props(seg)["nodeid"] == "kvmha/segment/KVMHA-ID-001[vlan101@kvm-a+kvm-b]"
    assert len([k for k in got if k.startswith("segment::")]) == 3
    # a skip names its item, not the inventory
    skip = got["edge-fw::KVMHA-HB-003[edge-fw]"].find("skipped")
    assert skip.text == "kvmha/edge-fw/KVMHA-HB-003[edge-fw]: broadcast heartbeat"


def test_junit_escapes_hostile_names(pytester: pytest.Pytester) -> None:
    pytester.runpytest(*hostile_hosts(pytester.path), "--junitxml=j.xml")
    got = cases(pytester.path / "j.xml")
    assert f"{IMG}::KVMHA-PKG-001[{IMG}]" in got  # parsed back as text, not markup


# --- catalogue ------------------------------------------------------------------------------


def test_list_checks_verbose_shows_rationale_remediation_source(
    pytester: pytest.Pytester,
) -> None:
    plain = pytester.runpytest("--kvmha-list-checks")
    assert "rationale" not in plain.stdout.str()
    result = pytester.runpytest("--kvmha-list-checks", "-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "KVMHA-PKG-001    high      bridge-utils is not installed",
            "    scope:       host",
            "    rationale:   The cOS Core KVM guide requires removing bridge-utils*",
            "    remediation: Remove the bridge-utils package*",
            "    source:      Clavister cOS Core KVM Installation Guide, ch. 7*",
            "    module:      pytest_kvmha.checks.host",
        ]
    )


def test_list_checks_json(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--kvmha-list-checks", "--kvmha-format=json")
    assert result.ret == 0
    doc = json.loads(result.stdout.str())
    assert doc["schema"] == "kvmha-checks/1"
    ids = [c["id"] for c in doc["checks"]]
    assert ids == sorted(ids) == [c.id for c in discover_checks()]
    assert len(ids) >= 13
    pkg = next(c for c in doc["checks"] if c["id"] == "KVMHA-PKG-001")
    assert pkg["severity"] == "high" and pkg["scope"] == "host"
    assert pkg["rationale"].startswith("The cOS Core KVM guide requires removing bridge-utils")
    assert set(pkg) == {
        "id",
        "title",
        "severity",
        "scope",
        "rationale",
        "remediation",
        "source",
        "module",
    }


def test_list_checks_unknown_format_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--kvmha-list-checks", "--kvmha-format=yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kvmha-format: unknown format 'yaml' (expected text|json)*"])


# --- site-specific checks through entry points ----------------------------------------------

SITE_CHECK = """
from pytest_kvmha.facts import HostFacts
from pytest_kvmha.model import Scope, Verdict, check, failed, passed


@check(
    "{id}",
    title="Hosts are named after the site convention",
    severity="low",
    scope=Scope.HOST,
    rationale="Operators find hosts by name.",
    remediation="Rename the host.",
    source="ACME operations handbook, 2.1",
)
def site_naming(host: HostFacts) -> Verdict:
    if host.name.startswith("kvm-"):
        return passed(f"{{host.name}} follows the convention")
    return failed(f"{{host.name}} does not start with kvm-", expected="kvm-*", found=host.name)
"""


def site_package(root: Path, check_id: str = "ACME-NAME-001", value: str = "acme_checks") -> Path:
    """A tiny installed distribution on sys.path: a module and its dist-info with an entry
    point in the group pytest_kvmha.checks (what pip writes for a real package)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "acme_checks.py").write_text(SITE_CHECK.format(id=check_id))
    info = root / "acme_kvmha_checks-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-kvmha-checks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[pytest_kvmha.checks]\nacme = {value}\n")
    return root


def test_site_checks_plug_in_through_an_entry_point(
    pytester: pytest.Pytester, recorded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(site_package(pytester.path / "site")))
    listed = pytester.runpytest("--kvmha-list-checks")
    listed.stdout.fnmatch_lines(["ACME-NAME-001    low       Hosts are named after*"])
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "-v", "-k", "ACME")
    result.stdout.fnmatch_lines(
        [
            "*kvmha/kvm-a/ACME-NAME-001[[]kvm-a[]] PASSED*",
            "*kvmha/kvm-b/ACME-NAME-001[[]kvm-b[]] PASSED*",
        ]
    )


def test_site_check_id_collision_names_both_sources(
    pytester: pytest.Pytester, recorded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(site_package(pytester.path / "site", "KVMHA-PKG-001")))
    for args in (["--kvmha-list-checks"], [f"--kvmha-inventory={recorded}"]):
        result = pytester.runpytest(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                "*check id KVMHA-PKG-001 is defined twice: in pytest_kvmha.checks.host and in "
                "acme_checks (entry point acme = acme_checks of acme-kvmha-checks 1.0)*"
            ]
        )


def test_broken_site_entry_point_names_itself(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(site_package(pytester.path / "site", value="acme_gone")))
    result = pytester.runpytest("--kvmha-list-checks")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*pytest_kvmha.checks: cannot load entry point acme = acme_gone of "
            "acme-kvmha-checks 1.0: ModuleNotFoundError*acme_gone*"
        ]
    )


# --- packaging ------------------------------------------------------------------------------


def test_packaging_metadata() -> None:
    meta = metadata.metadata("pytest-kvmha")
    assert meta["License-Expression"] == "Apache-2.0"
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.10" in classifiers
    assert "Typing :: Typed" in classifiers
    assert pytest_kvmha.__version__ == meta["Version"]
    package = Path(pytest_kvmha.__file__).parent
    assert (package / "py.typed").is_file()
    assert (package / "report" / "templates" / "report.html.j2").is_file()
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text
