"""A run's destination (parity.layout) and a pipeline's own manifest entries, under the
reference runner: the file layout `P.parquet` gives every output the bytes of its golden file
under the names contract §6 gives the events pipeline, compare keys those files by their
declared keys, and a pipeline's manifest function adds its entries or refuses the run."""

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from compare.__main__ import main as compare
from tests.conftest import PROJECT

SHOP = PROJECT / "examples" / "shop"
GOLDEN = json.loads((SHOP / "shop.golden.json").read_text())
DATES = ["2024-03-01", "2024-03-02", "2024-03-03"]


def parity(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parity", *args], cwd=PROJECT,
                          capture_output=True, text=True, check=False)  # fmt: skip


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_parquet_destination_gives_the_first_output_that_name_and_the_others_beside_it(
    tmp_path,
):
    done = parity("run", str(SHOP / "shop.py"), "--output-dir", str(tmp_path / "sales.parquet"))
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "sales.manifest.json", "sales.parquet", "sales.product_sales.parquet"]  # fmt: skip
    assert sha256(tmp_path / "sales.parquet") == GOLDEN["run/category_sales"]
    assert sha256(tmp_path / "sales.product_sales.parquet") == GOLDEN["run/product_sales"]
    outputs = json.loads((tmp_path / "sales.manifest.json").read_text())["outputs"]
    files = {name: entry["file"] for name, entry in outputs.items()}
    assert files == {"category_sales": "sales.parquet",
                     "product_sales": "sales.product_sales.parquet"}  # fmt: skip


def test_a_backfill_destination_with_date_gives_each_date_its_files(tmp_path):
    done = parity("backfill", str(SHOP / "shop.py"), "--start", DATES[0], "--end", DATES[-1],
                  "--output-dir", str(tmp_path / "{date}.parquet"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(list(tmp_path.iterdir())) == 3 * len(DATES)
    for day in DATES:
        got = sha256(tmp_path / f"{day}.parquet")
        assert got == GOLDEN[f"backfill/{day}/category_sales"], day
        got = sha256(tmp_path / f"{day}.product_sales.parquet")
        assert got == GOLDEN[f"backfill/{day}/product_sales"], day
        assert (tmp_path / f"{day}.manifest.json").is_file()


@pytest.mark.parametrize(("command", "destination", "cause"), [
    ("run", "{date}.parquet", "{date} names a backfill's dates; a run has one destination"),
    ("run", ".sales.parquet", "a name starting with '.' is hidden"),
    ("run", "taken.parquet", "is a folder, not a <name>.parquet file"),
    ("backfill", "{date}/.sales.parquet", "a name starting with '.' is hidden"),
])  # fmt: skip
def test_a_destination_that_could_never_be_published_is_one_line_and_nothing_is_written(
    tmp_path, command, destination, cause
):
    (tmp_path / "taken.parquet").mkdir()
    dates = ["--start", DATES[0], "--end", DATES[0]] if command == "backfill" else []
    done = parity(command, str(SHOP / "shop.py"), *dates,
                  "--output-dir", str(tmp_path / destination))  # fmt: skip
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("error: output") and cause in line, line
    assert [path.name for path in tmp_path.rglob("*")] == ["taken.parquet"]


def test_compare_keys_the_file_layouts_outputs_by_their_declared_keys(tmp_path, capsys):
    for side in ("a", "b"):
        done = parity("run", str(SHOP / "shop.py"), "--output-dir",
                      str(tmp_path / side / "sales.parquet"))  # fmt: skip
        assert done.returncode == 0, done.stderr
    changed = tmp_path / "b" / "sales.product_sales.parquet"
    table = pq.read_table(changed)
    first = table["product_id"][0].as_py()
    units = table["units"].to_pylist()
    more = pa.array([units[0] + 1, *units[1:]], table.schema.field("units").type)
    table = table.set_column(table.schema.get_field_index("units"), "units", more)
    pq.write_table(table, changed)
    code = compare([str(tmp_path / "a" / "sales.product_sales.parquet"), str(changed),
                    "--report-dir", str(tmp_path / "report")])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 1, text
    report = json.loads((tmp_path / "report" / "parity-report.json").read_text())
    [group] = report["groups"]
    assert group["key_columns"] == ["product_id"]
    [against] = group["against_baseline"].values()
    assert f"column units: 1 cell(s) differ, e.g. ('{first}',): {units[0]} vs {units[0] + 1}" in (
        against["details"]), against["details"]


COUNTING = '''
import pyarrow as pa
from parity import InputError, Output, Pipeline, step

@step
def numbers(n: int = 3) -> pa.Table:
    return pa.table({"id": pa.array(range(n), pa.int64())})

def {function}

pipeline = Pipeline("counting", steps=[numbers], outputs=[Output("numbers", key="id")],
                    manifest=counted)
'''


def counting(folder: Path, function: str) -> Path:
    path = folder / "counting.py"
    path.write_text(COUNTING.replace("{function}", textwrap.dedent(function).strip()))
    return path


def test_a_pipelines_manifest_function_adds_its_entries_from_results_and_parameters(tmp_path):
    pipeline = counting(tmp_path, """
        counted(numbers, n):
            return {"counts": {"rows": numbers.num_rows, "asked": n}}
    """)
    done = parity("run", str(pipeline), "--params", '{"n": 5}', "--output-dir",
                  str(tmp_path / "out"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"] == {"rows": 5, "asked": 5}
    assert manifest["outputs"]["numbers"]["key"] == ["id"]


@pytest.mark.parametrize(("function", "code", "line"), [
    ("""counted(numbers):
            raise InputError("3 rows do not reconcile")""",
     2, "error: 3 rows do not reconcile"),
    ("""counted(numbers):
            return {"outputs": {}}""",
     1, "error: pipeline 'counting': its manifest function must return a dict of entries other "
        "than attempts, destination, inputs, outputs, parameters, pipeline, timings_seconds, "
        "versions, wrapper"),
    ("""counted(numbers, rows):
            return {}""",
     2, "error: pipeline 'counting': manifest: parameter 'rows' is neither a step nor a run "
        "parameter of a step"),
])  # fmt: skip
def test_a_manifest_function_that_refuses_or_is_wrong_is_one_line_and_publishes_nothing(
    tmp_path, function, code, line
):
    done = parity("run", str(counting(tmp_path, function)), "--output-dir", str(tmp_path / "out"))
    assert done.returncode == code, done.stderr
    assert done.stderr.splitlines() == [line]
    assert not list((tmp_path / "out").glob("*"))  # nothing published, no temporary left
