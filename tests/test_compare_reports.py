"""compare's JUnit XML and HTML reports: written beside parity-report.json, counted and
escaped as the comparison found, and rendered by a real browser (headless Chromium)."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from compare.html_report import render_html
from compare.junit import render_junit
from compare.report import MAX_BYTES
from parity.files import write_parquet
from shared_etl.contract import METRICS_SCHEMA
from tests import browser, test_compare
from tests.test_compare import compare

# test_compare's fixtures: its reference outputs, and a copy of them as prefect's
reference_files, outputs = test_compare.reference_files, test_compare.outputs
MALICIOUS = "<script>alert('x')</script>&"


def _junit(report_dir: Path) -> ET.Element:
    return ET.parse(report_dir / "parity-report.junit.xml").getroot()


def _cases(root: ET.Element) -> dict[str, ET.Element | None]:
    """Each testcase's name and its <failure>, or None."""
    return {case.get("name"): case.find("failure") for case in root.iter("testcase")}


def _change_one_cell(folder: Path, column: str, value: object) -> None:
    table = pq.read_table(folder / "prefect_output.parquet")
    values = table[column].to_pylist()
    values[5] = value(values[5]) if callable(value) else value
    index = table.schema.get_field_index(column)
    field = METRICS_SCHEMA.field(column)
    changed = table.set_column(index, field, pa.array(values, field.type))
    write_parquet(changed, METRICS_SCHEMA, str(folder / "prefect_output.parquet"))


def test_an_identical_run_is_one_passing_testcase_per_output(outputs, tmp_path):
    report_dir = tmp_path / "report"
    code, text, report = compare(outputs, "--report-dir", report_dir)
    assert code == 0, text
    root = _junit(report_dir)
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "parity-compare"
    assert (suite.get("tests"), suite.get("failures")) == ("2", "0")
    assert _cases(root) == {group["key"]: None for group in report["groups"]}
    assert {case.get("classname") for case in root.iter("testcase")} == {"parity"}


def test_one_changed_cell_fails_its_group_alone_with_the_cause(outputs, tmp_path):
    _change_one_cell(outputs, "events", lambda events: events + 1)
    report_dir = tmp_path / "report"
    code, _, report = compare(outputs, "--report-dir", report_dir)
    assert code == 1
    root = _junit(report_dir)
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = _cases(root)
    assert cases["run/rejects"] is None
    message = cases["run/metrics"].get("message")
    assert message.startswith("run/metrics: prefect vs reference: rows-differ\n")
    assert "column events: 1 cell(s) differ" in message
    assert message == cases["run/metrics"].text
    assert [g["key"] for g in report["groups"]] == list(cases)


def test_missing_outputs_and_golden_mismatches_are_failures_naming_them(outputs, tmp_path):
    (outputs / "prefect_output.rejects.parquet").unlink()
    golden = tmp_path / "golden.json"
    golden.write_text(json.dumps({"run/metrics": "0" * 64, "backfill/2024-01-01/metrics": "1"}))
    report_dir = tmp_path / "report"
    code, _, _ = compare(outputs, "--golden", golden, "--report-dir", report_dir)
    assert code == 1
    root = _junit(report_dir)
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("3", "3")
    cases = _cases(root)
    assert "prefect produced no such output" in cases["run/rejects"].get("message")
    assert "is not the golden " + "0" * 64 in cases["run/metrics"].get("message")
    assert "not produced" in cases["backfill/2024-01-01/metrics"].get("message")


def test_the_reports_are_the_same_bytes_each_run_and_removed_on_an_error(outputs, tmp_path):
    report_dir = tmp_path / "report"
    names = ("parity-report.junit.xml", "parity-report.html")
    assert compare(outputs, "--report-dir", report_dir)[0] == 0
    first = [(report_dir / name).read_bytes() for name in names]
    assert compare(outputs, "--report-dir", report_dir)[0] == 0
    assert [(report_dir / name).read_bytes() for name in names] == first
    (outputs / "prefect_output.parquet").write_bytes(b"PAR1 not really")
    assert compare(outputs, "--report-dir", report_dir)[0] == 2
    assert sorted(report_dir.iterdir()) == []


def test_a_string_cell_with_markup_is_escaped_in_html_and_junit(outputs, tmp_path):
    _change_one_cell(outputs, "country", MALICIOUS)
    report_dir = tmp_path / "report"
    code, text, _ = compare(outputs, "--report-dir", report_dir)
    assert code == 1
    assert MALICIOUS in text  # the console shows it as it is: the HTML must not
    page = (report_dir / "parity-report.html").read_text()
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in page
    failure = _cases(_junit(report_dir))["run/metrics"]
    assert MALICIOUS in failure.get("message")  # parsed back: escaped in the file


def _report(keys: list[str], details: list[str]) -> dict:
    group = {
        "baseline": "reference", "files": {"reference": {}, "prefect": {}}, "missing": [],
        "verdict": "mismatch", "golden": {"expected": None, "checks": {}},
        "against_baseline": {"prefect": {"verdict": "rows-differ", "details": details}},
    }  # fmt: skip
    groups = [{**group, "key": key} for key in keys]
    return {"verdict": "mismatch", "wrappers": ["reference", "prefect"], "golden_missing": [],
            "wrappers_without_outputs": [], "groups": groups}  # fmt: skip


def test_the_renderers_escape_a_key_and_a_detail_given_directly():
    report = _report([f"run/{MALICIOUS}"], [f"column x: 'a' vs {MALICIOUS}\x00"])
    page = render_html(report)
    assert "<script" not in page and "&lt;script&gt;" in page
    root = ET.fromstring(render_junit(report))
    case = root.find("testsuite/testcase")
    assert case.get("name") == f"run/{MALICIOUS}"
    assert case.find("failure").get("message").endswith(f"{MALICIOUS}\\x00")


def test_the_html_stays_bounded_for_many_outputs_and_problems():
    report = _report([f"date-{n:06d}/metrics" for n in range(5_000)], ["<" * 2000] * 10)
    page = render_html(report)
    assert len(page.encode()) < MAX_BYTES + 16 * 1024
    assert "more output(s) not shown: see parity-report.json" in page
    assert "more line(s) not shown: see parity-report.json" in page


@pytest.mark.skipif(not browser.CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_headless_chromium_renders_the_verdict(outputs, tmp_path):
    _change_one_cell(outputs, "country", MALICIOUS)
    report_dir = tmp_path / "report"
    assert compare(outputs, "--report-dir", report_dir)[0] == 1
    page = (report_dir / "parity-report.html").resolve().as_uri()
    shot = tmp_path / "shot.png"
    state = tmp_path / "chromium"
    dom = browser.run(["--dump-dom", page], state)
    assert "VERDICT: MISMATCH: see below (2 outputs compared)" in dom
    assert "<script>alert" not in dom and "&lt;script&gt;alert" in dom
    browser.run([f"--screenshot={shot}", page], state)
    width, height, rows = browser.png_pixels(shot)
    assert (width, height) == browser.SIZE
    assert len({value for row in rows for value in set(row)}) > 1, "a blank screenshot"
    assert len(set(rows)) > 1, "every row the same: nothing drawn"
