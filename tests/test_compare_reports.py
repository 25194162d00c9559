"""compare's JUnit XML and HTML reports: written beside parity-report.json, counted and
escaped as the comparison found, and rendered by a real browser (headless Chromium)."""

import contextlib
import json
import os
import signal
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from compare.html_report import render_html
from compare.junit import render_junit
from compare.report import MAX_BYTES
from parity.files import write_parquet
from shared_etl.contract import METRICS_SCHEMA
from tests import test_compare
from tests.test_compare import compare

# test_compare's fixtures: its reference outputs, and a copy of them as prefect's
reference_files, outputs = test_compare.reference_files, test_compare.outputs
CHROMIUM = Path("/usr/bin/chromium")
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


def _png(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered pixel rows of an 8-bit RGB(A) PNG, chunk by chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat, header = 8, b"", None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    assert header, "no IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    pixel = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * pixel
    assert len(raw) == height * (stride + 1)
    rows, previous = [], bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        rows.append(previous := _unfilter(kind, line, previous, pixel))
    return width, height, rows


def _unfilter(kind: int, line: bytearray, above: bytes, pixel: int) -> bytes:
    if kind == 0:
        return bytes(line)
    if kind == 2:
        return bytes((a + b) & 0xFF for a, b in zip(line, above, strict=True))
    for i in range(len(line)):
        left = line[i - pixel] if i >= pixel else 0
        up, corner = above[i], above[i - pixel] if i >= pixel else 0
        if kind == 1:
            predicted = left
        elif kind == 3:
            predicted = (left + up) // 2
        else:  # 4, Paeth
            guess = left + up - corner
            near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up),
                       (abs(guess - corner), 2, corner))  # fmt: skip
            predicted = near[2]
        line[i] = (line[i] + predicted) & 0xFF
    return bytes(line)


def _run(command: list[str], state: Path) -> str:
    """Run `command` in a process group of its own, with a timeout; then kill whatever is
    left of it (a browser's helpers: its group, and any that left the group but name its
    `state` folder, like a crash handler) and check that nothing survives."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # SIGKILL is sure, not instant, and a helper may still be forking as the group dies:
    # kill whatever is found until nothing is left.
    deadline = time.monotonic() + 20
    while (left := _survivors(process.pid, state)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    assert not left, f"chromium processes survived: {left}"
    assert process.returncode == 0, stderr
    return stdout


def _survivors(group: int, state: Path) -> list[int]:
    """Live (not zombie) processes in `group`, or whose command line names `state`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:  # after the parenthesised command: state, ppid, pgrp
            status, _, pgrp = (proc / "stat").read_text().rpartition(")")[2].split()[:3]
            line = (proc / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if status not in "ZX" and (int(pgrp) == group or str(state).encode() in line):
            found.append(int(proc.name))
    return found


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_headless_chromium_renders_the_verdict(outputs, tmp_path):
    _change_one_cell(outputs, "country", MALICIOUS)
    report_dir = tmp_path / "report"
    assert compare(outputs, "--report-dir", report_dir)[0] == 1
    page = (report_dir / "parity-report.html").resolve().as_uri()
    shot = tmp_path / "shot.png"
    state = tmp_path / "chromium"
    browser = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
               f"--user-data-dir={state}", "--window-size=1200,800"]  # fmt: skip
    dom = _run([*browser, "--dump-dom", page], state)
    assert "VERDICT: MISMATCH: see below (2 outputs compared)" in dom
    assert "<script>alert" not in dom and "&lt;script&gt;alert" in dom
    _run([*browser, f"--screenshot={shot}", page], state)
    width, height, rows = _png(shot)
    assert (width, height) == (1200, 800)
    assert len({value for row in rows for value in set(row)}) > 1, "a blank screenshot"
    assert len(set(rows)) > 1, "every row the same: nothing drawn"
