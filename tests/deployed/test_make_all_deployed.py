"""`make all MODE=deployed`: local and deployed runs of the sample in one verdict, with the
stack held up once for all of them and left as it was found (contract §8, issue 14).

One orchestrator in both modes stands for all three here (EXPECT narrows the run): the full
default run is what CI's `make all MODE=deployed` covers."""

import hashlib
import json

import pytest

from tests.conftest import PROJECT, make
from tests.deployed.conftest import stack_processes

pytestmark = pytest.mark.deployed

GOLDEN = json.loads((PROJECT / "compare" / "golden.json").read_text())
DATES = [f"2024-01-0{day}" for day in range(1, 8)]


def test_make_all_deployed_compares_both_modes_and_leaves_the_stack_as_found(tmp_path):
    was_up = "RUNNING" in make("status").stdout
    result = make("all", "MODE=deployed", "EXPECT=reference prefect prefect@deployed",
                  f"OUTPUT_ROOT={tmp_path}")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

    lines = result.stdout.splitlines()
    runs = [line.split(" ok in ")[0] for line in lines if " ok in " in line]
    assert runs == [f"all: {kind}{name}" for kind in ("", "backfill-")
                    for name in ("reference", "prefect", "prefect@deployed")]  # fmt: skip
    assert lines[-1] == (
        "VERDICT: IDENTICAL: 16 outputs, byte for byte, across reference, prefect, prefect@deployed"
    )
    deployed = {"run/metrics": tmp_path / "deployed" / "prefect_output.parquet"} | {
        f"backfill/{day}/metrics": tmp_path / "deployed" / "backfill" / "prefect" / f"{day}.parquet"
        for day in DATES
    }
    for key, path in deployed.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == GOLDEN[key], path
    report = json.loads((tmp_path / "parity-report.json").read_text())
    assert all(group["files"]["prefect@deployed"]["path"].startswith(f"{tmp_path}/deployed/")
               for group in report["groups"])  # fmt: skip

    if was_up:
        assert "RUNNING" in make("status").stdout
    else:
        assert lines[0] == "stack: down, starting it for this command (and stopping it after)"
        assert "stack: down (make up starts it)" in make("status").stdout
        assert stack_processes() == []
