"""compare: real Parquet from the project's own writer, perturbed one kind at a time."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from parity.files import write_parquet
from shared_etl.contract import METRICS_SCHEMA
from tests.conftest import PROJECT, SAMPLE, run_reference


@pytest.fixture(scope="module")
def reference_files(tmp_path_factory) -> Path:
    """The reference runner's real outputs for the sample."""
    folder = tmp_path_factory.mktemp("reference")
    result = run_reference(
        "--input-path", str(SAMPLE), "--output-path", str(folder / "reference_output.parquet")
    )
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture
def outputs(tmp_path, reference_files) -> Path:
    """output/ with the reference's files and an identical copy as `prefect`'s."""
    folder = tmp_path / "output"
    folder.mkdir()
    for suffix in (".parquet", ".rejects.parquet"):
        source = reference_files / f"reference_output{suffix}"
        shutil.copyfile(source, folder / f"reference_output{suffix}")
        shutil.copyfile(source, folder / f"prefect_output{suffix}")
    return folder


def compare(
    *args: str | Path, cwd: Path = PROJECT, expect: str | None = "reference,prefect"
) -> tuple[int, str, dict | None]:
    """`python -m compare ARGS`, by default expecting the two wrappers `outputs` holds."""
    if expect and "--bless" not in args:
        args = (*args, "--expect", expect)
    result = subprocess.run(
        [sys.executable, "-m", "compare", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, check=False,
        env={"PYTHONPATH": str(PROJECT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    report_dir = next((Path(a) for a in args if str(a).endswith("report")), None)
    report = None
    if report_dir and (report_dir / "parity-report.json").exists():
        report = json.loads((report_dir / "parity-report.json").read_text())
    return result.returncode, result.stdout + result.stderr, report


def _metrics(folder: Path) -> pa.Table:
    return pq.read_table(folder / "prefect_output.parquet")


def test_identical_outputs_exit_0_with_the_verdict(outputs, tmp_path):
    code, text, report = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 0, text
    assert "VERDICT: IDENTICAL: 2 outputs" in text
    assert report["verdict"] == "identical"
    markdown = (tmp_path / "report" / "parity-report.md").read_text()
    assert "| `run/metrics` | base | = |" in markdown


def test_another_compression_is_content_equal_and_names_the_compression(outputs, tmp_path):
    pq.write_table(_metrics(outputs), outputs / "prefect_output.parquet", compression="snappy")
    code, text, report = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 1
    result = report["groups"][0]["against_baseline"]["prefect"]
    assert result["verdict"] == "content-equal"
    assert any("compression differs in 9 column(s)" in d and "ZSTD vs SNAPPY" in d
               for d in result["details"]), result["details"]  # fmt: skip
    assert "run/metrics: prefect vs reference: content-equal" in text


def test_another_writer_version_is_named_from_created_by(outputs, tmp_path):
    path = outputs / "prefect_output.parquet"
    ours = f"parquet-cpp-arrow version {pa.__version__}".encode()
    other = f"parquet-cpp-arrow version {'9' * len(pa.__version__.split('.')[0])}".encode()
    other += pa.__version__.encode()[len(pa.__version__.split(".")[0]) :]
    assert len(other) == len(ours) and ours in path.read_bytes()
    path.write_bytes(path.read_bytes().replace(ours, other))
    code, _, report = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 1
    result = report["groups"][0]["against_baseline"]["prefect"]
    assert result["verdict"] == "content-equal"
    assert result["details"] == [
        f"created_by (the writer): {ours.decode()!r} vs {other.decode()!r}"
    ]


def test_a_retyped_column_is_a_schema_difference(outputs, tmp_path):
    table = _metrics(outputs)
    retyped = table.set_column(3, pa.field("events", pa.int32(), nullable=False),
                               pc.cast(table["events"], pa.int32()))  # fmt: skip
    pq.write_table(retyped, outputs / "prefect_output.parquet")
    code, _, report = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 1
    result = report["groups"][0]["against_baseline"]["prefect"]
    assert result == {
        "verdict": "schema-differs",
        "details": ["field events retyped: int64 vs int32"],
    }


def test_a_dropped_row_is_named_by_its_key(outputs, tmp_path):
    table = _metrics(outputs)
    write_parquet(table.slice(1), METRICS_SCHEMA, str(outputs / "prefect_output.parquet"))
    first = table.slice(0, 1).to_pylist()[0]
    code, _, report = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 1
    result = report["groups"][0]["against_baseline"]["prefect"]
    assert result["verdict"] == "rows-differ"
    key = (str(first["event_date"]), first["country"], first["event_type"])
    assert f"1 row(s) reference only, e.g. {key}" in result["details"]


def test_one_changed_cell_is_counted_per_column_with_both_values(outputs, tmp_path):
    table = _metrics(outputs)
    events = table["events"].to_pylist()
    events[5] += 1
    changed = table.set_column(3, METRICS_SCHEMA.field("events"), pa.array(events, pa.int64()))
    write_parquet(changed, METRICS_SCHEMA, str(outputs / "prefect_output.parquet"))
    code, text, report = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 1
    details = report["groups"][0]["against_baseline"]["prefect"]["details"]
    assert [d for d in details if d.startswith("column ")] == [
        f"column events: 1 cell(s) differ, e.g. {_key(table, 5)}: {events[5] - 1} vs {events[5]}"
    ]
    assert "VERDICT: MISMATCH" in text


def _key(table: pa.Table, index: int) -> tuple:
    row = table.slice(index, 1).to_pylist()[0]
    return (str(row["event_date"]), row["country"], row["event_type"])


def test_a_missing_path_is_a_usage_error(tmp_path):
    code, text, _ = compare(tmp_path / "nowhere", "--report-dir", tmp_path / "report")
    assert code == 2
    assert f"{tmp_path / 'nowhere'}: no such file or folder" in text


def test_a_file_that_is_not_parquet_is_an_input_error(outputs, tmp_path):
    (outputs / "prefect_output.parquet").write_text("event_id,event_ts\n")
    code, text, _ = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 2
    assert f"{outputs / 'prefect_output.parquet'}: not a Parquet file" in text


def test_a_wrapper_missing_an_output_is_a_mismatch(outputs, tmp_path):
    (outputs / "prefect_output.rejects.parquet").unlink()
    code, text, _ = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 1
    assert "run/rejects: prefect produced no such output" in text


def test_golden_hashes_catch_a_change_every_wrapper_agrees_on(outputs, tmp_path, reference_files):
    golden = tmp_path / "golden.json"
    bless = compare("--bless", reference_files, "--golden", golden)
    assert bless[0] == 0 and "bless: run/metrics: (none) ->" in bless[1]
    assert compare(outputs, "--golden", golden, "--report-dir", tmp_path / "report")[0] == 0

    table = _metrics(outputs)
    for name in ("prefect_output.parquet", "reference_output.parquet"):  # both drift together
        write_parquet(table.slice(1), METRICS_SCHEMA, str(outputs / name))
    code, text, _ = compare(outputs, "--golden", golden, "--report-dir", tmp_path / "report")
    assert code == 1
    assert "is not the golden" in text
    assert compare("--bless", reference_files, "--golden", golden)[1].endswith(
        f"bless: {golden} unchanged (2 outputs)\n"
    )


def test_golden_outputs_that_were_not_produced_are_a_mismatch(outputs, tmp_path):
    golden = tmp_path / "golden.json"
    golden.write_text(json.dumps({"backfill/2024-01-01/metrics": "0" * 64}))
    code, text, _ = compare(outputs, "--golden", golden, "--report-dir", tmp_path / "report")
    assert code == 1
    assert "backfill/2024-01-01/metrics: expected by the golden hashes but not produced" in text


def test_the_committed_golden_hashes_are_the_reference_outputs_of_the_sample(reference_files):
    # One side is a verdict only against a golden file (contract §11): the run's two outputs
    # match it (the backfill's, which this fixture does not write, are named as missing).
    golden = json.loads((PROJECT / "compare" / "golden.json").read_text())
    report_dir = reference_files / "report"
    code, text, report = compare(reference_files, "--report-dir", report_dir,
                                 "--golden", PROJECT / "compare" / "golden.json",
                                 expect="reference")  # fmt: skip
    assert code == 1, text
    checks = {group["key"]: group["golden"]["checks"] for group in report["groups"]}
    assert checks == {"run/metrics": {"reference": "match"}, "run/rejects": {"reference": "match"}}
    for name, key in (("reference_output.parquet", "run/metrics"),
                      ("reference_output.rejects.parquet", "run/rejects")):  # fmt: skip
        assert hashlib.sha256((reference_files / name).read_bytes()).hexdigest() == golden[key]


# The gate knows which wrappers it expects (issue 12, item 13).


def test_reference_outputs_alone_are_a_mismatch_naming_each_missing_one(tmp_path, reference_files):
    code, text, report = compare(reference_files, "--report-dir", tmp_path / "report",
                                 expect=None)  # fmt: skip
    assert code == 1, text
    assert report["verdict"] == "mismatch"
    for wrapper in ("prefect", "dagster", "airflow"):
        assert f"{wrapper}: no outputs at all" in text
        assert f"run/metrics: {wrapper} produced no such output" in text
    assert "VERDICT: MISMATCH" in text


def test_a_wrapper_that_wrote_nothing_is_named_when_expected(outputs, tmp_path):
    code, text, _ = compare(outputs, "--report-dir", tmp_path / "report",
                            expect="reference,prefect,dagster")  # fmt: skip
    assert code == 1
    assert "dagster: no outputs at all (expected: reference, dagster, prefect)" in text
    assert "run/rejects: dagster produced no such output" in text


def test_outputs_of_a_wrapper_not_expected_are_set_aside_and_named(outputs, tmp_path):
    for suffix in (".parquet", ".rejects.parquet"):
        shutil.copyfile(outputs / f"prefect_output{suffix}", outputs / f"dagster_output{suffix}")
    code, text, report = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 0, text
    assert report["wrappers"] == ["reference", "prefect"]
    assert "dagster: 2 output(s) set aside, not expected (--expect reference,prefect)" in text


# Never a stale verdict (item 14).


def test_a_comparison_that_errors_leaves_no_earlier_report_behind(outputs, tmp_path):
    report_dir = tmp_path / "report"
    assert compare(outputs, "--report-dir", report_dir)[0] == 0
    assert (report_dir / "parity-report.md").exists()
    (outputs / "prefect_output.parquet").write_bytes(b"PAR1 not really")
    code, _, report = compare(outputs, "--report-dir", report_dir)
    assert code == 2
    assert report is None
    assert sorted(report_dir.iterdir()) == []


# Whatever is under the compared folder: one line and exit 2, never a traceback (item 15).


def _one_error_line(text: str) -> str:
    assert "Traceback" not in text, text
    (line,) = text.splitlines()
    assert line.startswith("compare: error: "), line
    return line


def test_a_stray_parquet_file_at_the_root_is_named(outputs, tmp_path):
    shutil.copyfile(outputs / "prefect_output.parquet", outputs / "foo.parquet")
    code, text, _ = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 2
    assert f"{outputs / 'foo.parquet'}: not an output of any wrapper" in _one_error_line(text)


def test_a_folder_named_like_an_output_is_named(outputs, tmp_path):
    (outputs / "prefect_output.parquet").unlink()
    (outputs / "prefect_output.parquet").mkdir()
    code, text, _ = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 2
    assert f"{outputs / 'prefect_output.parquet'}: a folder" in _one_error_line(text)


@pytest.mark.parametrize("name", ["notes/x.parquet", "random_output.parquet",
                                  "prefect/notes.parquet", ".prefect_output.parquet"])  # fmt: skip
def test_a_parquet_file_in_no_known_layout_is_never_taken_as_a_wrapper(outputs, tmp_path, name):
    (outputs / name).parent.mkdir(exist_ok=True)
    shutil.copyfile(outputs / "prefect_output.parquet", outputs / name)
    code, text, _ = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 2
    assert _one_error_line(text).startswith(f"compare: error: {outputs / name}: ")


def test_every_unknown_file_is_named_on_its_own_line(outputs, tmp_path):
    for name in ("foo.parquet", "bar.parquet"):
        shutil.copyfile(outputs / "prefect_output.parquet", outputs / name)
    code, text, _ = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 2
    assert [line.split(": ")[2] for line in text.splitlines()] == [
        str(outputs / "bar.parquet"),
        str(outputs / "foo.parquet"),
    ]


def test_a_truncated_parquet_file_is_an_input_error(outputs, tmp_path):
    path = outputs / "prefect_output.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    code, text, _ = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 2
    assert f"{path}: not a Parquet file" in _one_error_line(text)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_parquet_file_is_an_input_error(outputs, tmp_path):
    path = outputs / "prefect_output.parquet"
    path.chmod(0)
    code, text, _ = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 2
    assert f"{path}: cannot read it (Permission denied)" in _one_error_line(text)


def test_an_output_that_cannot_be_opened_is_an_input_error(outputs, tmp_path):
    path = outputs / "prefect_output.parquet"
    path.unlink()
    path.symlink_to(tmp_path / "gone.parquet")  # what root, too, cannot read
    code, text, _ = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 2
    assert f"{path}: cannot read it (No such file or directory)" in _one_error_line(text)


def test_a_date_python_cannot_hold_is_a_row_difference_shown_raw(outputs, tmp_path):
    # Was exit 2 ("holds a value that cannot be read"): the engine converted every row to
    # Python. The file is valid Parquet holding a valid date32, so it is a difference (§11).
    table = _metrics(outputs)
    year_zero = -719_162 - 366  # days from 1970-01-01 back to 0000-01-01, which Python has not
    dates = pa.array([year_zero, *table["event_date"].cast(pa.int32()).to_pylist()[1:]],
                     pa.date32())  # fmt: skip
    path = outputs / "prefect_output.parquet"
    pq.write_table(table.set_column(0, table.schema.field("event_date"), dates), path)
    code, text, report = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 1, text
    details = report["groups"][0]["against_baseline"]["prefect"]["details"]
    first = _key(table, 0)
    assert f"1 row(s) reference only, e.g. {first}" in details
    assert (f"1 row(s) other only, e.g. (<date32[day] stored as {year_zero}, beyond Python's "
            f"range>, {first[1]!r}, {first[2]!r})") in details  # fmt: skip


def test_a_duplicated_row_is_named_as_such(outputs, tmp_path):
    table = _metrics(outputs)
    twice = pa.concat_tables([table.slice(0, 1), table.slice(0, table.num_rows - 1)])
    write_parquet(twice, METRICS_SCHEMA, str(outputs / "prefect_output.parquet"))
    code, _, report = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 1
    details = report["groups"][0]["against_baseline"]["prefect"]["details"]
    rows = table.num_rows
    assert details[0] == f"rows: {rows} vs {rows} (keyed on event_date, country, event_type)"
    assert details[1] == f"1 key(s) duplicated in other, e.g. {_key(table, 0)} x2"


def test_no_outputs_names_the_default_folder(tmp_path):
    (tmp_path / "output").mkdir()
    code, text, _ = compare(cwd=tmp_path, expect=None)
    assert code == 2
    assert _one_error_line(text) == (
        "compare: error: no Parquet outputs of reference, prefect, dagster, airflow under output"
    )


def test_a_run_for_one_date_is_its_own_group(outputs, tmp_path, reference_files):
    dated = outputs / "date-2024-01-03"
    dated.mkdir()
    shutil.copyfile(outputs / "prefect_output.parquet", dated / "prefect_output.parquet")
    code, text, report = compare(outputs, "--report-dir", tmp_path / "report")
    assert code == 1
    assert "date-2024-01-03/run/metrics: reference produced no such output" in text
    verdicts = {group["key"]: group["verdict"] for group in report["groups"]}
    assert verdicts == {"date-2024-01-03/run/metrics": "mismatch",
                        "run/metrics": "identical", "run/rejects": "identical"}  # fmt: skip


def test_keys_are_relative_to_the_root_when_files_are_named(outputs, tmp_path):
    golden = PROJECT / "compare" / "golden.json"
    code, text, _ = compare("--root", outputs, outputs / "reference_output.parquet",
                            outputs / "prefect_output.parquet", "--golden", golden)  # fmt: skip
    report = json.loads((outputs / "parity-report.json").read_text())  # the root's folder
    assert [group["key"] for group in report["groups"]] == ["run/metrics"]
    assert code == 1 and "run/rejects: expected by the golden hashes but not produced" in text


# Deployed mode (issue 14): outputs under deployed/ are `<wrapper>@deployed`, in the groups of
# their local twins, so one verdict compares the modes with each other and with the golden.


@pytest.fixture
def both_modes(outputs, reference_files) -> Path:
    """output/ as `make all MODE=deployed` leaves it for a run and one backfill date:
    reference and prefect at the root, prefect again under deployed/."""
    for suffix in (".parquet", ".rejects.parquet"):
        source = reference_files / f"reference_output{suffix}"
        for folder, wrapper in ((outputs / "deployed", "prefect"), (outputs, "reference"),
                                (outputs, "prefect")):  # fmt: skip
            (folder / "backfill" / wrapper).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, folder / "backfill" / wrapper / f"2024-01-01{suffix}")
        shutil.copyfile(source, outputs / "deployed" / f"prefect_output{suffix}")
    return outputs


BOTH_MODES = "reference,prefect,prefect@deployed"


def test_deployed_outputs_join_their_local_twins_in_one_verdict(both_modes, tmp_path):
    code, text, report = compare(both_modes, "--report-dir", tmp_path / "report",
                                 expect=BOTH_MODES)  # fmt: skip
    assert code == 0, text
    assert text.splitlines()[0].split() == ["output", "reference", "prefect", "prefect@deployed"]
    assert [group["key"] for group in report["groups"]] == [
        "backfill/2024-01-01/metrics", "backfill/2024-01-01/rejects", "run/metrics", "run/rejects"
    ]  # fmt: skip
    deployed = report["groups"][0]["files"]["prefect@deployed"]["path"]
    assert deployed == str(both_modes / "deployed" / "backfill" / "prefect" / "2024-01-01.parquet")
    assert text.splitlines()[-1] == (
        "VERDICT: IDENTICAL: 4 outputs, byte for byte, across reference, prefect, prefect@deployed"
    )
    markdown = (tmp_path / "report" / "parity-report.md").read_text()
    assert "| output | reference | prefect | prefect@deployed |" in markdown
    assert "| `run/metrics` | base | = | = |" in markdown


def test_a_deployed_file_that_differs_is_named_with_its_mode(both_modes, tmp_path):
    table = _metrics(both_modes)
    write_parquet(table.slice(1), METRICS_SCHEMA,
                  str(both_modes / "deployed" / "prefect_output.parquet"))  # fmt: skip
    code, text, report = compare(both_modes, "--report-dir", tmp_path / "report",
                                 "--golden", PROJECT / "compare" / "golden.json",
                                 expect=BOTH_MODES)  # fmt: skip
    assert code == 1
    assert "run/metrics: prefect@deployed vs reference: rows-differ" in text
    assert "run/metrics: prefect@deployed sha256 " in text  # and not the golden one
    assert "run/metrics: prefect vs reference" not in text
    [group] = [group for group in report["groups"] if group["key"] == "run/metrics"]
    assert group["golden"]["checks"] == {
        "reference": "match", "prefect": "match", "prefect@deployed": "mismatch"
    }  # fmt: skip


def test_a_deployed_wrapper_with_no_outputs_is_named(both_modes, tmp_path):
    code, text, _ = compare(both_modes, "--report-dir", tmp_path / "report",
                            expect=f"{BOTH_MODES},dagster@deployed")  # fmt: skip
    assert code == 1
    assert ("dagster@deployed: no outputs at all (expected: reference, prefect, "
            "dagster@deployed, prefect@deployed)") in text  # fmt: skip
    assert "run/metrics: dagster@deployed produced no such output" in text


def test_deployed_outputs_not_expected_are_set_aside_and_named(both_modes, tmp_path):
    code, text, _ = compare(both_modes, "--report-dir", tmp_path / "report")
    assert code == 0, text
    assert "prefect@deployed: 4 output(s) set aside, not expected" in text


@pytest.mark.parametrize("name", ["deployed/foo.parquet", "deployed/random_output.parquet",
                                  "deployed/prefect/notes.parquet"])  # fmt: skip
def test_a_parquet_file_in_no_known_layout_under_deployed_is_refused(both_modes, tmp_path, name):
    (both_modes / name).parent.mkdir(exist_ok=True)
    shutil.copyfile(both_modes / "prefect_output.parquet", both_modes / name)
    code, text, _ = compare(both_modes, "--report-dir", tmp_path / "report", expect=BOTH_MODES)
    assert code == 2
    assert _one_error_line(text).startswith(f"compare: error: {both_modes / name}: ")


def test_an_unknown_mode_in_expect_is_a_usage_error(both_modes, tmp_path):
    code, text, _ = compare(both_modes, "--report-dir", tmp_path / "report",
                            expect="reference,prefect@cloud")  # fmt: skip
    assert code == 2
    assert "prefect@cloud: not a wrapper's name (a wrapper, or <wrapper>@deployed)" in text


def test_a_partial_run_is_red_with_the_commands_that_complete_or_narrow_it(outputs, tmp_path):
    """Only reference ran one date; every other output is the same: the hint says how to
    complete the run or narrow the verdict. A differing cell as well: no such hint."""
    shutil.copytree(outputs, tmp_path / "three")
    day = outputs / "date-2024-01-03"
    day.mkdir()
    for suffix in (".parquet", ".rejects.parquet"):
        shutil.copyfile(outputs / f"reference_output{suffix}", day / f"reference_output{suffix}")
    code, text, _ = compare(outputs)
    assert code == 1
    hints = [line for line in text.splitlines() if line.startswith("hint:")]
    assert len(hints) == 1 and "`make <wrapper> DATE=2024-01-03`" in hints[0], text
    assert "EXPECT=" not in hints[0]  # only reference wrote every output

    three = tmp_path / "three"  # prefect and dagster complete, airflow missing the run
    for suffix in (".parquet", ".rejects.parquet"):
        shutil.copyfile(three / f"prefect_output{suffix}", three / f"dagster_output{suffix}")
    shutil.copyfile(three / "prefect_output.parquet", three / "airflow_output.parquet")
    code, text, _ = compare(three, expect="reference,prefect,dagster,airflow")
    assert code == 1
    assert 'EXPECT="reference dagster prefect"' in text, text

    table = _metrics(outputs)
    column = next(i for i, field in enumerate(table.schema) if pa.types.is_integer(field.type))
    changed = table.set_column(column, table.field(column), pc.add(table.column(column), 1))
    write_parquet(changed, table.schema, str(outputs / "prefect_output.parquet"))
    code, text, _ = compare(outputs)
    assert code == 1 and "hint:" not in text, text
