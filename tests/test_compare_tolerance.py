"""compare: opt-in tolerances (a second verdict) and per-column statistics of differing cells,
on Parquet pairs whose answer is known by construction."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import PROJECT

ROWS = 50


def compare(*args: str | Path, cwd: Path) -> tuple[int, str, dict | None]:
    """`python -m compare ARGS` as a user runs it; the report is read from cwd/report."""
    result = subprocess.run(
        [sys.executable, "-m", "compare", *map(str, args), "--report-dir", str(cwd / "report")],
        capture_output=True, text=True, cwd=cwd, check=False,
        env={"PYTHONPATH": str(PROJECT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    path = cwd / "report" / "parity-report.json"
    report = json.loads(path.read_text()) if path.exists() else None
    return result.returncode, result.stdout + result.stderr, report


def only_pair(report: dict) -> dict:
    (result,) = report["groups"][0]["against_baseline"].values()
    return result


def base_columns() -> dict[str, list]:
    return {
        "id": list(range(ROWS)),
        "price": [1000.0 + n * 0.37 for n in range(ROWS)],
        "ratio": [0.5 + n / 7 for n in range(ROWS)],
        "count": list(range(100, 100 + ROWS)),
    }


def write_pair(folder: Path, change) -> tuple[Path, Path]:
    """a.parquet with base_columns(), b.parquet with `change(columns)` applied."""
    folder.mkdir(parents=True, exist_ok=True)
    ours, theirs = base_columns(), base_columns()
    change(theirs)
    a, b = folder / "a.parquet", folder / "b.parquet"
    pq.write_table(pa.table(ours), a)
    pq.write_table(pa.table(theirs), b)
    return a, b


def scale(name: str, rows: list[int], by: float):
    def change(columns):
        for n in rows:
            columns[name][n] = columns[name][n] * (1 + by)
    return change


def test_tiny_relative_difference_is_strict_mismatch_but_within_rtol(tmp_path):
    a, b = write_pair(tmp_path / "data", scale("price", [3, 7], 1e-12))
    code, out, report = compare(a, b, "--key", "id", cwd=tmp_path)
    assert code == 1, out
    assert "VERDICT: MISMATCH" in out and "tolerance" not in out
    assert "tolerance" not in report and "column_stats" not in json.dumps(report)

    code, out, report = compare(a, b, "--key", "id", "--rtol", "1e-9", cwd=tmp_path)
    assert code == 0, out
    assert "VERDICT: MISMATCH" in out  # the strict verdict stays
    assert "EQUAL WITHIN TOLERANCE" in out and "within tolerance" in out
    assert "column price: 2 cell(s) differ" in out
    assert report["verdict"] == "mismatch"
    assert report["tolerance"]["verdict"] == "equal-within-tolerance"
    assert report["groups"][0]["tolerance"] == "within"
    assert "warning" not in out
    markdown = (tmp_path / "report" / "parity-report.md").read_text()
    assert "EQUAL WITHIN TOLERANCE" in markdown and "stats price: 2 unequal" in markdown


def test_large_difference_is_beyond_rtol(tmp_path):
    a, b = write_pair(tmp_path / "data", scale("price", [3], 1e-3))
    code, out, report = compare(a, b, "--key", "id", "--rtol", "1e-9", cwd=tmp_path)
    assert code == 1, out
    assert "differences beyond tolerance" in out and "NOT within tolerance" in out
    assert report["tolerance"]["verdict"] == "mismatch"


def test_int_column_is_never_tolerated(tmp_path):
    def change(columns):
        columns["count"][5] += 1
    a, b = write_pair(tmp_path / "data", change)
    code, out, report = compare(a, b, "--key", "id", "--rtol", "0.5", "--atol", "10",
                                cwd=tmp_path)  # fmt: skip
    assert code == 1, out
    (stats,) = only_pair(report)["column_stats"]
    assert stats["column"] == "count" and stats["tolerance"]["within"] is False
    assert stats["max_abs_diff"] == 1.0


def test_per_column_tolerance_applies_to_that_column_only(tmp_path):
    def change(columns):
        scale("price", [1], 1e-12)(columns)
        scale("ratio", [2], 1e-12)(columns)
    a, b = write_pair(tmp_path / "data", change)
    code, out, report = compare(a, b, "--key", "id", "--tolerance", "price=rtol:1e-9",
                                cwd=tmp_path)  # fmt: skip
    assert code == 1, out
    stats = {entry["column"]: entry for entry in
             only_pair(report)["column_stats"]}  # fmt: skip
    assert stats["price"]["tolerance"]["within"] is True
    assert stats["ratio"]["tolerance"]["within"] is False
    code, out, _ = compare(a, b, "--key", "id", "--tolerance", "price=rtol:1e-9",
                           "--tolerance", "ratio=atol:1e-9", cwd=tmp_path)  # fmt: skip
    assert code == 0, out


def test_atol(tmp_path):
    def change(columns):
        columns["price"][4] += 0.005
    a, b = write_pair(tmp_path / "data", change)
    assert compare(a, b, "--key", "id", "--atol", "0.01", cwd=tmp_path)[0] == 0
    assert compare(a, b, "--key", "id", "--atol", "0.001", cwd=tmp_path)[0] == 1


def test_loose_rtol_warns(tmp_path):
    a, b = write_pair(tmp_path / "data", scale("price", [3], 1e-4))
    code, out, report = compare(a, b, "--key", "id", "--rtol", "1e-3", cwd=tmp_path)
    assert code == 0, out
    assert "warning: --rtol 0.001 is loose" in out
    assert report["tolerance"]["warnings"]
    code, out, _ = compare(a, b, "--key", "id", "--rtol", "1e-6", cwd=tmp_path)
    assert "warning" not in out


@pytest.mark.parametrize(("ours", "theirs", "code"), [
    (math.nan, math.nan, 0),  # NaN vs NaN: equal, nothing to tolerate
    (math.nan, 1.0, 1),  # NaN vs a number: beyond any tolerance
    (None, 1.0, 1),  # null vs a value: never
    (math.inf, -math.inf, 1),
])  # fmt: skip
def test_nan_and_null_against_tolerance(tmp_path, ours, theirs, code):
    def write(path, value):
        pq.write_table(pa.table({"id": [0, 1], "x": pa.array([0.25, value], pa.float64())}), path)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write(a, ours)
    write(b, theirs)
    result, out, _ = compare(a, b, "--key", "id", "--rtol", "1e-3", "--atol", "1e6",
                             cwd=tmp_path)  # fmt: skip
    assert result == code, out


def test_statistics_match_numbers_computed_here(tmp_path):
    def change(columns):
        columns["price"][2] += 0.25
        columns["price"][9] -= 1.5
        columns["price"][11] = None
        columns["count"][0] = None
    a, b = write_pair(tmp_path / "data", change)
    code, out, report = compare(a, b, "--key", "id", "--stats", cwd=tmp_path)
    assert code == 1
    assert "tolerance" not in report
    stats = {entry["column"]: entry for entry in
             only_pair(report)["column_stats"]}  # fmt: skip
    assert set(stats) == {"price", "count"}
    price = base_columns()["price"]
    expected = max(abs(price[2] - (price[2] + 0.25)), abs(price[9] - (price[9] - 1.5)))
    assert stats["price"]["unequal"] == 3
    assert stats["price"]["max_abs_diff"] == pytest.approx(expected, rel=1e-12)
    assert stats["price"]["nulls"] == [0, 1]
    assert stats["price"]["types"] == ["double", "double"]
    assert stats["count"] == {"column": "count", "unequal": 1, "nulls": [0, 1],
                              "types": ["int64", "int64"], "max_abs_diff": None}
    assert "stats price: 3 unequal, max |diff| 1.5, nulls 0 vs 1, double" in out


def test_no_key_same_row_count_pairs_rows_in_order(tmp_path):
    a, b = write_pair(tmp_path / "data", scale("ratio", [0, 1], 1e-12))
    code, out, _ = compare(a, b, "--rtol", "1e-9", cwd=tmp_path)
    assert code == 0, out


def test_one_sided_rows_are_beyond_tolerance(tmp_path):
    def change(columns):
        for values in columns.values():
            values.pop()
    a, b = write_pair(tmp_path / "data", change)
    code, out, _ = compare(a, b, "--key", "id", "--rtol", "1e-3", cwd=tmp_path)
    assert code == 1, out


@pytest.mark.parametrize("bad", [["--rtol", "x"], ["--atol", "-1"],
                                 ["--tolerance", "price"], ["--tolerance", "price=foo:1"]])
def test_bad_tolerance_is_usage_error(tmp_path, bad):
    a, b = write_pair(tmp_path / "data", scale("price", [3], 1e-12))
    code, out, _ = compare(a, b, *bad, cwd=tmp_path)
    assert code == 2, out


@pytest.mark.parametrize(("atol", "code"), [("0.01", 0), ("0.001", 1)])
def test_decimal_column(tmp_path, atol, code):
    from decimal import Decimal

    kind = pa.decimal128(12, 4)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"id": [1, 2], "d": pa.array([Decimal("1"), Decimal("2")], kind)}), a)
    pq.write_table(pa.table({"id": [1, 2], "d": pa.array([Decimal("1"), Decimal("2.005")],
                                                          kind)}), b)  # fmt: skip
    result, out, report = compare(a, b, "--key", "id", "--atol", atol, cwd=tmp_path)
    assert result == code, out
    assert only_pair(report)["column_stats"][0]["max_abs_diff"] == pytest.approx(0.005)
