"""`make new-pipeline NAME=n DIR=d` as a user runs it: a folder outside the repository gets a
pipeline that computes what its docstring says, and `make all PIPELINE=d/n.py` is green at
once; a taken or unusable name writes nothing."""

import csv
import hashlib
import json
from collections import defaultdict

import pyarrow.parquet as pq
import pytest

from tests.conftest import make

pytestmark = pytest.mark.orchestrators


def test_a_scaffolded_pipeline_is_correct_and_green_under_make_all(tmp_path):
    folder = tmp_path / "my pipelines"
    made = make("new-pipeline", "NAME=sales", f"DIR={folder}")
    assert made.returncode == 0, made.stdout + made.stderr
    assert sorted(path.name for path in folder.iterdir()) == [
        "README.md", "sales.csv", "sales.golden.json", "sales.py"]  # fmt: skip
    assert made.stdout.splitlines()[-1] == f"next: make all PIPELINE={folder}/sales.py"

    root = tmp_path / "output"
    result = make("all", f"PIPELINE={folder}/sales.py", "EXPECT=reference dagster",
                  f"OUTPUT_ROOT={root}")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("VERDICT: IDENTICAL: 4 outputs")

    # What the docstring promises, computed here from the sample with the csv module.
    expected = defaultdict(lambda: [0, 0.0])
    with (folder / "sales.csv").open(newline="") as sample:
        for row in csv.DictReader(sample):
            totals = expected[(row["sale_date"], row["region"])]
            totals[0] += 1
            totals[1] += float(row["amount"])
    table = pq.read_table(root / "sales" / "reference" / "daily_totals.parquet").to_pylist()
    assert [(r["sale_date"], r["region"]) for r in table] == sorted(expected)
    for row in table:
        count, amount = expected[(row["sale_date"], row["region"])]
        assert row["sales"] == count and row["amount"] == pytest.approx(amount, rel=1e-12)

    golden = json.loads((folder / "sales.golden.json").read_text())
    run = root / "sales" / "dagster" / "daily_totals.parquet"
    assert golden["run/daily_totals"] == hashlib.sha256(run.read_bytes()).hexdigest()


@pytest.mark.parametrize(("name", "cause"), [
    ("events", "NAME=events: pipeline 'events'"),
    ("../up", "NAME='../up' is no Python identifier"),
    ("sales", "sales.py exists; choose another NAME or DIR"),
])  # fmt: skip
def test_a_name_that_cannot_be_used_is_one_line_and_writes_nothing(tmp_path, name, cause):
    (tmp_path / "sales.py").write_text("# the user's own file\n")
    result = make("new-pipeline", f"NAME={name}", f"DIR={tmp_path}")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if not line.startswith("make: ***")]
    assert len(errors) == 1 and cause in errors[0], result.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["sales.py"]
    assert (tmp_path / "sales.py").read_text() == "# the user's own file\n"
