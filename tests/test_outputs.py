"""Contract §5-§7 end to end through the reference runner: files, schema, window, manifest."""

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared_etl.contract import METRICS_SCHEMA, REJECTS_SCHEMA
from tests.conftest import PROJECT, SAMPLE, csv_line, read_table, run_reference

UTC = dt.UTC


def _run(source: Path, output: Path, *extra: str, env: dict | None = None) -> None:
    result = run_reference(
        "--input-path", str(source), "--output-path", str(output), *extra, env=env
    )
    assert result.returncode == 0, result.stderr


def test_metrics_are_the_hand_computed_rows_sorted_by_date_country_type(write_csv, tmp_path):
    source = write_csv(
        [
            csv_line(event_id="1", country="US", event_type="view", user_id="1", session_id="a"),
            csv_line(
                event_id="2",
                country="us",
                event_type="VIEW",
                user_id="2",
                session_id="a",
                event_ts="2024-01-01T12:00:00.25+02:00",
            ),
            csv_line(
                event_id="3",
                country="US",
                event_type="purchase",
                amount="12.50",
                currency="EUR",
                user_id="1",
                session_id="b",
            ),
            csv_line(
                event_id="4",
                country="US",
                event_type="purchase",
                amount="0.50",
                currency="GBP",
                user_id="1",
                session_id="b",
                event_ts="2024-01-01T11:00:00Z",
            ),
            csv_line(
                event_id="5", country="DE", event_type="click", event_ts="2024-01-01T23:30:00-01:00"
            ),
            csv_line(event_id="6", country="ZA", event_type="add_to_cart"),
        ]
    )
    output = tmp_path / "out" / "metrics.parquet"
    _run(source, output)
    table = read_table(output)
    assert table.schema.equals(METRICS_SCHEMA)
    ten = dt.datetime(2024, 1, 1, 10, tzinfo=UTC)
    half_past = dt.datetime(2024, 1, 2, 0, 30, tzinfo=UTC)
    assert table.to_pylist() == [
        _metric(dt.date(2024, 1, 1), "US", "purchase", 2, 1, 1, "14.14", ten,
                dt.datetime(2024, 1, 1, 11, tzinfo=UTC)),
        _metric(dt.date(2024, 1, 1), "US", "view", 2, 2, 1, "0.00", ten,
                dt.datetime(2024, 1, 1, 10, 0, 0, 250_000, tzinfo=UTC)),
        _metric(dt.date(2024, 1, 1), "ZA", "add_to_cart", 1, 1, 1, "0.00", ten, ten),
        _metric(dt.date(2024, 1, 2), "DE", "click", 1, 1, 1, "0.00", half_past, half_past),
    ]  # fmt: skip


def _metric(date, country, event_type, events, users, sessions, revenue, first, last) -> dict:
    return {
        "event_date": date,
        "country": country,
        "event_type": event_type,
        "events": events,
        "unique_users": users,
        "unique_sessions": sessions,
        "revenue_usd": Decimal(revenue),
        "first_event_ts": first,
        "last_event_ts": last,
    }


def test_three_files_are_written_beside_each_other_with_the_contract_schemas(tmp_path):
    output = tmp_path / "run.parquet"
    _run(SAMPLE, output)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "run.manifest.json",
        "run.parquet",
        "run.rejects.parquet",
    ]
    assert read_table(output).schema.equals(METRICS_SCHEMA)
    rejects = read_table(tmp_path / "run.rejects.parquet")
    assert rejects.schema.equals(REJECTS_SCHEMA)
    assert rejects.column("source_row").to_pylist() == sorted(
        rejects.column("source_row").to_pylist()
    )


def test_the_file_carries_no_pandas_metadata_and_the_fixed_recipe(tmp_path):
    output = tmp_path / "run.parquet"
    _run(SAMPLE, output)
    metadata = pq.ParquetFile(output).metadata
    assert b"pandas" not in (metadata.metadata or {})
    assert metadata.created_by == f"parquet-cpp-arrow version {pa.__version__}"
    column = metadata.row_group(0).column(0)
    assert column.compression == "ZSTD"
    assert column.statistics is not None and column.statistics.has_min_max


def test_an_empty_input_gives_zero_row_files_with_the_full_schema(write_csv, tmp_path):
    output = tmp_path / "empty.parquet"
    _run(write_csv([]), output)
    assert read_table(output).num_rows == 0
    assert read_table(output).schema.equals(METRICS_SCHEMA)
    assert read_table(tmp_path / "empty.rejects.parquet").schema.equals(REJECTS_SCHEMA)
    manifest = json.loads((tmp_path / "empty.manifest.json").read_text())
    assert manifest["counts"]["records_read"] == 0
    assert manifest["reconciliation"]["holds"] is True


def test_a_date_window_keeps_one_utc_date_and_counts_the_rest_out_of_window(write_csv, tmp_path):
    source = write_csv(
        [
            csv_line(event_id="1", event_ts="2024-01-01T23:30:00-05:00"),  # 2024-01-02 in UTC
            csv_line(event_id="2", event_ts="2024-01-02T10:00:00Z"),
            csv_line(event_id="3", event_ts="2024-01-01T10:00:00Z"),
            csv_line(event_id="4", user_id="x"),
        ]
    )
    output = tmp_path / "day.parquet"
    _run(source, output, "--date", "2024-01-02")
    table = read_table(output)
    assert table.column("event_date").to_pylist() == [dt.date(2024, 1, 2)]
    assert table.column("events").to_pylist() == [2]
    counts = json.loads((tmp_path / "day.manifest.json").read_text())["counts"]
    assert (counts["out_of_window"], counts["rejected"], counts["metric_rows"]) == (1, 1, 1)
    assert read_table(tmp_path / "day.rejects.parquet").num_rows == 1  # the whole file's

    _run(source, output, "--date", "2030-01-01")
    assert read_table(output).num_rows == 0


def test_the_manifest_reconciles_the_counts_and_records_the_run(tmp_path):
    output = tmp_path / "run.parquet"
    _run(SAMPLE, output)
    manifest = json.loads((tmp_path / "run.manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["records_read"] == counts["kept"] + counts["rejected"] + counts["duplicates"]
    assert counts["rejected"] == sum(counts["rejected_by_reason"].values())
    assert counts["rejected"] == read_table(tmp_path / "run.rejects.parquet").num_rows
    assert counts["kept"] == sum(read_table(output).column("events").to_pylist())
    assert manifest["reconciliation"]["holds"] is True
    assert manifest["inputs"]["input_path"]["size_bytes"] == SAMPLE.stat().st_size
    assert manifest["outputs"]["metrics"]["sha256"] == _sha256(output)
    assert manifest["outputs"]["rejects"]["sha256"] == _sha256(tmp_path / "run.rejects.parquet")
    assert manifest["versions"]["pyarrow"] == pa.__version__
    assert manifest["attempts"] == {"validated": 1, "metrics": 1, "rejects": 1}
    assert manifest["wrapper"]["name"] == "reference"


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_runs_in_separate_processes_write_identical_bytes(tmp_path):
    first, second = tmp_path / "a" / "run.parquet", tmp_path / "b" / "run.parquet"
    _run(SAMPLE, first)
    _run(SAMPLE, second)
    for name in ("run.parquet", "run.rejects.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_daily_outputs_add_up_to_the_all_dates_output(tmp_path, seed):
    source = tmp_path / "events.csv"
    generated = subprocess.run(
        [sys.executable, "-m", "shared_etl.generate", "--rows", "3000", "--seed", str(seed),
         "--start", "2024-03-30", "--days", "4", "--output", str(source)],
        check=True, capture_output=True, cwd=PROJECT,
    )  # fmt: skip
    assert generated.returncode == 0
    _run(source, tmp_path / "all.parquet")
    backfill = run_reference(
        "--input-path",
        str(source),
        "--start",
        "2024-03-29",
        "--end",
        "2024-04-03",
        "--output-dir",
        str(tmp_path / "daily"),
    )
    assert backfill.returncode == 0, backfill.stderr
    daily = [
        read_table(tmp_path / "daily" / f"{day}.parquet")
        for day in (
            "2024-03-29",
            "2024-03-30",
            "2024-03-31",
            "2024-04-01",
            "2024-04-02",
            "2024-04-03",
        )
    ]
    assert pa.concat_tables(daily).equals(read_table(tmp_path / "all.parquet"))
    # the generator's instants lie in 2024-03-30..04-02 UTC, whatever their local offsets say
    assert [table.num_rows > 0 for table in daily] == [False, True, True, True, True, False]


def test_a_revenue_sum_beyond_decimal_18_2_fails_the_run_and_writes_nothing(write_csv, tmp_path):
    # 8000 x 999999999999.99 GBP = 1.016e18 cents: past the 10^18 - 1 that decimal128(18, 2) holds
    lines = [csv_line(event_id=f"e{n}", event_type="purchase", amount="999999999999.99",
                      currency="GBP") for n in range(8000)]  # fmt: skip
    output = tmp_path / "out.parquet"
    result = run_reference("--input-path", str(write_csv(lines)), "--output-path", str(output))
    assert result.returncode == 1
    assert "does not fit decimal128(18, 2)" in result.stderr
    assert list(tmp_path.glob("out*")) == []


def test_injected_transient_failure_fails_the_plain_runner_cleanly(tmp_path):
    output = tmp_path / "out.parquet"
    result = run_reference("--input-path", str(SAMPLE), "--output-path", str(output),
                           env={"ETL_FAIL_ATTEMPTS": "1"})  # fmt: skip
    assert result.returncode == 1
    assert "metrics: injected transient failure on attempt 1" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_process_killed_while_writing_leaves_no_file_under_the_final_name(tmp_path):
    """The write is cut off by SIGKILL half-way through the metrics file's bytes."""
    output = tmp_path / "out.parquet"
    killer = f"""
import os, signal, sys
import pyarrow.parquet as pq
real_write = pq.write_table
def write_then_die(table, where, **options):
    real_write(table, where, **options)
    with open(where, "r+b") as handle:
        handle.truncate(os.path.getsize(where) // 2)
    os.kill(os.getpid(), signal.SIGKILL)
pq.write_table = write_then_die
from parity.__main__ import main
sys.exit(main(["--input-path", {str(SAMPLE)!r}, "--output-path", {str(output)!r}]))
"""
    result = subprocess.run(
        [sys.executable, "-c", killer],
        cwd=PROJECT,
        check=False,
        env={**os.environ, "ETL_STAGING_ROOT": str(tmp_path / "staging")},
    )
    assert result.returncode == -9
    leftovers = sorted(path.name for path in tmp_path.iterdir() if path.is_file())
    assert all(name.startswith(".") and name.endswith(".tmp") for name in leftovers), leftovers
    assert not output.exists()
    assert not (tmp_path / "out.rejects.parquet").exists()
    assert not (tmp_path / "out.manifest.json").exists()


def test_a_second_run_replaces_the_files_with_the_same_bytes(tmp_path):
    output = tmp_path / "run.parquet"
    _run(SAMPLE, output)
    before = output.read_bytes()
    inode = output.stat().st_ino
    _run(SAMPLE, output)
    assert output.read_bytes() == before
    assert output.stat().st_ino != inode  # replaced by rename, not rewritten in place


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--output-path", "out.csv"], "must end with .parquet"),
        (["--output-path", "x.parquet", "--date", "2024-1-1"], "DATE=2024-1-1: not a date"),
        (["--output-path", "x.parquet", "--date", "2024-02-30"], "DATE=2024-02-30: not a date"),
        (["--start", "2024-01-02", "--end", "2024-01-01", "--output-dir", "d"], "before its start"),
    ],
)
def test_unusable_parameters_exit_2_with_one_line(tmp_path, args, message):
    result = run_reference("--input-path", str(SAMPLE), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not list(Path(PROJECT).glob("x.parquet")) and not (PROJECT / "out.csv").exists()
