"""Dagster's own command line, as the README documents it, writes the reference runner's bytes:
one run with a date in its run config, and a partition range in one run."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROJECT, SAMPLE, assert_same_parquet, run_reference

pytestmark = pytest.mark.orchestrators

DAGSTER = PROJECT / ".venvs" / "dagster" / "bin" / "dagster"


def materialize(home: Path, *arguments: str, config: dict) -> None:
    result = subprocess.run(
        [str(DAGSTER), "asset", "materialize", "-f", "dagster/definitions.py", *arguments,
         "--config-json", json.dumps({"ops": config})],
        cwd=PROJECT, env={"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(home)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def reference(output: Path, date: str) -> None:
    result = run_reference("--input-path", str(SAMPLE), "--output-path", str(output),
                           "--date", date)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_dagster_asset_materialize_writes_the_reference_bytes(tmp_path):
    home = tmp_path / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT / "dagster" / "dagster.yaml").read_text())
    one = tmp_path / "one.parquet"
    materialize(
        home, "--select", "metrics",
        config={"metrics": {"config": {"input_path": str(SAMPLE), "output_path": str(one),
                                       "date": "2024-01-03"}}},
    )  # fmt: skip
    materialize(
        home, "--select", "daily_metrics", "--partition-range", "2024-01-02...2024-01-03",
        config={"daily_metrics": {"config": {"input_path": str(SAMPLE),
                                             "output_dir": str(tmp_path / "days")}}},
    )  # fmt: skip
    for date in ("2024-01-02", "2024-01-03"):
        reference(tmp_path / f"reference-{date}.parquet", date)
    expected = {
        one: tmp_path / "reference-2024-01-03.parquet",
        tmp_path / "days" / "2024-01-02.parquet": tmp_path / "reference-2024-01-02.parquet",
        tmp_path / "days" / "2024-01-03.parquet": tmp_path / "reference-2024-01-03.parquet",
    }
    for got, want in expected.items():
        assert_same_parquet(got, want)
