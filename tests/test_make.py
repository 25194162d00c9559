"""The make front door as a user meets it: paths with spaces, refused names, what make returns,
runs for one date beside the all-dates outputs, and what `make all` removes and keeps.

Every run is real (the reference runner through make; Dagster once, the quickest orchestrator,
for quoting); OUTPUT_ROOT points make at a temporary folder instead of the project's output/.
"""

import hashlib
import json
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from parity.files import write_parquet
from parity.registry import WRAPPERS
from shared_etl.contract import METRICS_SCHEMA
from tests.conftest import PROJECT, SAMPLE, assert_same_parquet, make, read_table, run_reference

GOLDEN = json.loads((PROJECT / "compare" / "golden.json").read_text())
PARITY_COMPARE = PROJECT / ".venvs" / "reference" / "bin" / "parity-compare"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module", autouse=True)
def environments_built() -> None:
    result = make("setup")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    """The reference runner's outputs of the sample, run directly: what make must reproduce."""
    output = tmp_path_factory.mktemp("truth") / "reference_output.parquet"
    result = run_reference("--input-path", str(SAMPLE), "--output-path", str(output))
    assert result.returncode == 0, result.stderr
    return output


@pytest.fixture
def spaced(tmp_path) -> Path:
    """A folder and an input whose names hold spaces: `my data/my events.csv`."""
    folder = tmp_path / "my data"
    folder.mkdir()
    shutil.copyfile(SAMPLE, folder / "my events.csv")
    return folder


def four_wrappers(folder: Path, reference_run: Path) -> Path:
    """`folder` as `make all` leaves it for single runs: the same files under every wrapper."""
    folder.mkdir(parents=True, exist_ok=True)
    for wrapper in WRAPPERS:
        for suffix in (".parquet", ".rejects.parquet"):
            source = reference_run.with_name(f"reference_output{suffix}")
            shutil.copyfile(source, folder / f"{wrapper}_output{suffix}")
    return folder


# Item 11: every variable is one argument, whatever it holds; hidden names are refused.


@pytest.mark.parametrize(
    "wrapper", ["reference", pytest.param("dagster", marks=pytest.mark.orchestrators)]
)
def test_an_input_and_output_with_spaces_run_through_make(spaced, reference_run, wrapper):
    output = spaced / "out put" / f"{wrapper}_output.parquet"
    result = make(wrapper, f"INPUT={spaced / 'my events.csv'}", f"OUTPUT={output}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_same_parquet(output, reference_run)


def test_a_backfill_with_spaces_in_its_input_and_folder_runs_through_make(spaced):
    variables = f"INPUT={spaced / 'my events.csv'}", f"OUTPUT_DIR={spaced / 'back fill'}"
    result = make("backfill-reference", "START=2024-01-01", "END=2024-01-02", *variables)
    assert result.returncode == 0, result.stdout + result.stderr
    for day in ("2024-01-01", "2024-01-02"):
        written = spaced / "back fill" / "reference" / f"{day}.parquet"
        assert sha256(written) == GOLDEN[f"backfill/{day}/metrics"]


@pytest.mark.parametrize(
    ("target", "variable", "name"),
    [("reference", "OUTPUT", ".parquet"), ("reference", "OUTPUT", ".hidden_output.parquet"),
     ("backfill-reference", "OUTPUT_DIR", ".backfill")],
)  # fmt: skip
def test_a_hidden_output_name_is_refused_in_one_line(tmp_path, target, variable, name):
    result = make(target, f"{variable}={tmp_path / name}", "START=2024-01-01", "END=2024-01-01")
    assert result.returncode != 0
    first, *rest = result.stderr.splitlines()
    assert first.startswith(f"make: {variable}={tmp_path / name}: a name starting with '.'")
    assert all(line.startswith("make: ***") for line in rest), result.stderr
    assert list(tmp_path.iterdir()) == []


# Item 12: the gate's own command keeps 0 / 1 / 2; make returns 0 or non-zero (2).


def test_parity_compare_keeps_its_exit_status_where_make_returns_2(tmp_path, reference_run):
    folder = four_wrappers(tmp_path / "out", reference_run)
    table = read_table(folder / "prefect_output.parquet")
    write_parquet(table.slice(1), METRICS_SCHEMA, str(folder / "prefect_output.parquet"))
    own = subprocess.run([PARITY_COMPARE, folder], capture_output=True, text=True, check=False)
    through_make = make("compare", f"OUTPUT_ROOT={folder}")
    assert own.returncode == 1, own.stdout + own.stderr
    assert through_make.returncode == 2
    assert "VERDICT: MISMATCH" in own.stdout and "VERDICT: MISMATCH" in through_make.stdout
    (folder / "prefect_output.parquet").write_text("not parquet")
    error = subprocess.run([PARITY_COMPARE, folder], capture_output=True, text=True, check=False)
    assert error.returncode == 2 and "not a Parquet file" in error.stderr


# Item 13: make compare expects all four wrappers unless told otherwise.


def test_make_compare_expects_every_wrapper_by_default(tmp_path, reference_run):
    folder = four_wrappers(tmp_path / "out", reference_run)
    for wrapper in ("dagster", "airflow"):
        for suffix in (".parquet", ".rejects.parquet"):
            (folder / f"{wrapper}_output{suffix}").unlink()
    result = make("compare", f"OUTPUT_ROOT={folder}")
    assert result.returncode != 0
    assert "dagster: no outputs at all" in result.stdout
    assert "airflow: no outputs at all" in result.stdout
    # The golden backfill outputs are missing here, so only the named wrappers are asked for.
    chosen = make("compare", f"OUTPUT_ROOT={folder}", "EXPECT=reference prefect")
    header = next(line for line in chosen.stdout.splitlines() if line.startswith("output "))
    assert header.split() == ["output", "reference", "prefect"]
    assert "no outputs at all" not in chosen.stdout
    assert "run/metrics: " not in chosen.stdout.replace("/run/metrics: ", "")


# Item 16: a run for one date never replaces the all-dates outputs compare checks.


def test_a_run_for_one_date_goes_to_its_own_folder_and_group(tmp_path, reference_run):
    folder = four_wrappers(tmp_path / "out", reference_run)
    before = sha256(folder / "reference_output.parquet")
    result = make("reference", f"OUTPUT_ROOT={folder}", "DATE=2024-01-03")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sha256(folder / "reference_output.parquet") == before
    dated = folder / "date-2024-01-03" / "reference_output.parquet"
    assert read_table(dated).column("event_date").unique().to_pylist() == [date(2024, 1, 3)]
    verdict = make("compare", f"OUTPUT_ROOT={folder}")
    assert "date-2024-01-03/run/metrics: prefect produced no such output" in verdict.stdout
    assert "run/metrics: prefect vs reference" not in verdict.stdout


# Item 17: make all removes only what it rewrites, says so, and keeps the rest.


def test_make_all_removes_only_what_it_rewrites_and_says_so(tmp_path):
    folder = tmp_path / "out put"
    (folder / "backfill" / "reference").mkdir(parents=True)
    kept = {
        folder / "notes.txt": b"my notes",
        folder / "mine.parquet": SAMPLE.read_bytes()[:100],
        folder / "backfill" / "reference" / "2023-12-31.parquet": b"an older backfill",
    }
    for path, data in kept.items():
        path.write_bytes(data)
    (folder / "reference_output.parquet").write_bytes(b"stale")
    (folder / "parity-report.md").write_text("Verdict: identical\n")
    result = make("all", "EXPECT=reference", f"OUTPUT_ROOT={folder}")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("all: removing the outputs it rewrites (")
    assert lines[0].endswith(f"other files in {folder}/ are kept")
    assert {path: path.read_bytes() for path in kept} == kept
    assert sha256(folder / "reference_output.parquet") == GOLDEN["run/metrics"]
    assert lines[-1] == "VERDICT: IDENTICAL: 16 outputs, byte for byte, across reference"
    assert "16 outputs" in (folder / "parity-report.md").read_text()
    # The kept Parquet file is not a wrapper's: a plain `make compare` names it and stops.
    later = make("compare", "EXPECT=reference", f"OUTPUT_ROOT={folder}")
    assert later.returncode != 0
    assert f"compare: error: {folder / 'mine.parquet'}: not an output of any wrapper" in (
        later.stderr
    )


@pytest.mark.parametrize("name", ["bogus", "prefect@cloud"])
def test_make_all_refuses_a_name_that_is_no_wrapper_before_running_anything(tmp_path, name):
    result = make("all", f"EXPECT=reference {name}", f"OUTPUT_ROOT={tmp_path}")
    assert result.returncode != 0
    first, *rest = result.stderr.splitlines()
    assert first == (f"all: EXPECT: {name} is not a wrapper (reference prefect dagster airflow; "
                     "<wrapper>@deployed for another mode)")  # fmt: skip
    assert all(line.startswith("make: ***") for line in rest), result.stderr
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


def test_make_help_names_every_variable_the_makefile_reads_from_the_user():
    """Every variable a user can set appears in `make help`: those the Makefile defaults with
    `?=`, and those its recipes read but never define (PYTEST_ARGS, BENCH_ARGS...), found by
    reading the Makefile's text here, not from the help itself."""
    text = (PROJECT / "Makefile").read_text()
    defaulted = set(re.findall(r"^([A-Z_]+) \?=", text, re.MULTILINE))
    assigned = set(re.findall(r"^(?:export )?([A-Z_][A-Za-z_]*) *:?=", text, re.MULTILINE))
    referenced = set(re.findall(r"\$[({]([A-Z][A-Z_]+)[)}]", text))
    builtin = {"CURDIR", "MAKEFILE_LIST", "MAKE", "MAKECMDGOALS", "MAKEFLAGS"}
    settable = defaulted | (referenced - assigned - builtin)
    assert {"OUTPUT_ROOT", "PYTEST_ARGS", "BENCH_ARGS", "PIPELINE"} <= settable

    result = make("help")
    assert result.returncode == 0, result.stderr
    named = set(re.findall(r"\b[A-Z][A-Z_]+\b", result.stdout))
    assert sorted(settable - named) == []
