"""The events pipeline declared with the runtime's API (shared_etl/pipeline.py) gives the events
wrappers' very bytes: under every generic adapter on the sample (against compare/golden.json,
the hashes the events wrappers have always been held to), and under the reference runner on
messy data no golden file was made from (against the bench's Polars and DuckDB jobs, the
contract written again independently)."""

import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from parity.registry import WRAPPERS
from shared_etl.pipeline import pipeline
from tests.conftest import PROJECT, make, run_reference

GOLDEN = json.loads((PROJECT / "compare" / "golden.json").read_text())
DATES = [f"2024-01-0{day}" for day in range(1, 8)]
MESSY_RECORDS = 20_000


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_its_golden_file_is_the_events_wrappers_own():
    beside = PROJECT / "shared_etl" / f"{pipeline.name}.golden.json"
    assert json.loads(beside.read_text()) == GOLDEN
    assert sorted(GOLDEN) == sorted(
        [f"run/{name}" for name in ("metrics", "rejects")]
        + [f"backfill/{day}/{name}" for day in DATES for name in ("metrics", "rejects")]
    )


@pytest.mark.orchestrators
def test_every_generic_adapter_gives_the_events_golden_bytes(tmp_path):
    result = make("all", "PIPELINE=shared_etl.pipeline", f"OUTPUT_ROOT={tmp_path}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("VERDICT: IDENTICAL: 16 outputs")
    root = tmp_path / pipeline.name
    for wrapper in WRAPPERS:
        for name in ("metrics", "rejects"):
            assert sha256(root / wrapper / f"{name}.parquet") == GOLDEN[f"run/{name}"], wrapper
            for day in DATES:
                got = sha256(root / "backfill" / wrapper / day / f"{name}.parquet")
                assert got == GOLDEN[f"backfill/{day}/{name}"], (wrapper, day)


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    """bench/messy.py's dirt: offsets, rejects of every reason, duplicates, quoted fields."""
    path = tmp_path_factory.mktemp("messy") / "messy.csv"
    subprocess.run(
        [sys.executable, "-m", "bench.messy", "--rows", str(MESSY_RECORDS), "--seed", "7",
         "--output", str(path)],
        cwd=PROJECT, check=True, capture_output=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def peers(messy, tmp_path_factory) -> dict[str, tuple[pa.Table, pa.Table]]:
    """The metrics and the quarantine of the bench's Polars and DuckDB jobs on the messy file:
    the contract written again, by other hands with other tools (bench/), as the oracle."""
    folder = tmp_path_factory.mktemp("peers")
    found = {}
    for peer in ("polars", "duckdb"):
        metrics, rejects = folder / f"{peer}.parquet", folder / f"{peer}.rejects.parquet"
        subprocess.run([sys.executable, "-m", f"bench.{peer}_job", str(messy), str(metrics),
                        str(rejects)], cwd=PROJECT, check=True, capture_output=True)  # fmt: skip
        found[peer] = (pq.read_table(metrics), pq.read_table(rejects))
    return found


@pytest.mark.parametrize("date", [None, "2024-03-04"])  # bench.messy: March 2024
def test_on_messy_data_it_computes_what_the_independent_peers_compute(messy, peers, tmp_path,
                                                                      date):  # fmt: skip
    """In the file layout (parity.layout), the declared pipeline writes contract §6's three
    files at the events command's names; its metrics are the Polars and DuckDB jobs' cell for
    cell (a DATE's, their rows of that date), its quarantine theirs row for row, and its
    manifest's counts reconcile with the generator's."""
    output = tmp_path / "out.parquet"
    done = run_reference("--input-path", str(messy), "--output-path", str(output),
                         *(["--date", date] if date else []))  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = ["out.manifest.json", "out.parquet", "out.rejects.parquet"]
    assert sorted(path.name for path in tmp_path.iterdir()) == names
    metrics, rejects = pq.read_table(output), pq.read_table(tmp_path / names[2])
    for peer, (their_metrics, their_rejects) in peers.items():
        if date:
            day = pa.scalar(dt.date.fromisoformat(date), pa.date32())
            their_metrics = their_metrics.filter(pc.equal(their_metrics["event_date"], day))
        assert their_metrics.cast(metrics.schema).equals(metrics), peer
        assert their_rejects.cast(rejects.schema).equals(rejects), peer
    assert metrics.num_rows > 0
    counts = json.loads((tmp_path / names[0]).read_text())["counts"]
    assert counts["records_read"] == MESSY_RECORDS  # as many as bench.messy was asked for
    assert counts["rejected"] == rejects.num_rows
    assert counts["metric_rows"] == metrics.num_rows
    assert counts["kept"] == counts["records_read"] - counts["rejected"] - counts["duplicates"]


def test_the_events_command_line_runs_the_declared_pipeline_at_contract_six_names(tmp_path):
    """Without a command, every wrapper's command line is the events one (parity.cli's seed
    form): the default pipeline, `--output-path P` in the file layout, a backfill's
    `--output-dir DIR` as DIR/<date>.parquet, with the golden bytes."""
    seed = [sys.executable, "-m", "parity", "--input-path", "data/synthetic_events.csv"]
    one = subprocess.run([*seed, "--output-path", str(tmp_path / "run" / "all.parquet")],
                         cwd=PROJECT, capture_output=True, text=True, check=False)  # fmt: skip
    assert one.returncode == 0, one.stderr
    assert sha256(tmp_path / "run" / "all.parquet") == GOLDEN["run/metrics"]
    assert sha256(tmp_path / "run" / "all.rejects.parquet") == GOLDEN["run/rejects"]
    backfill = subprocess.run([*seed, "--start", DATES[0], "--end", DATES[1], "--output-dir",
                               str(tmp_path / "days")], cwd=PROJECT, capture_output=True,
                              text=True, check=False)  # fmt: skip
    assert backfill.returncode == 0, backfill.stderr
    assert sorted(path.name for path in (tmp_path / "days").iterdir()) == sorted(
        f"{day}{suffix}" for day in DATES[:2]
        for suffix in (".parquet", ".rejects.parquet", ".manifest.json"))  # fmt: skip
    for day in DATES[:2]:
        assert sha256(tmp_path / "days" / f"{day}.parquet") == GOLDEN[f"backfill/{day}/metrics"]
    refused = subprocess.run([*seed, "--output-path", str(tmp_path / "no-suffix")], cwd=PROJECT,
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [f"error: output path '{tmp_path / 'no-suffix'}' must "
                                           "end with .parquet and name a file: <name>.parquet"]
    assert not (tmp_path / "no-suffix").exists()
