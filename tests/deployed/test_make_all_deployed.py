"""`make all MODE=deployed`: local and deployed runs of the sample in one verdict, with the
stack held up once for all of them and left as it was found (contract §8, issue 14).

This is CI's parity gate in deployed mode: the full default run, every wrapper locally and
every orchestrator through the stack, each output against the committed golden hashes."""

import hashlib
import json

import pytest

from parity.registry import ORCHESTRATORS, WRAPPERS
from tests.conftest import PROJECT, make
from tests.deployed.conftest import stack_processes

pytestmark = pytest.mark.deployed

GOLDEN = json.loads((PROJECT / "compare" / "golden.json").read_text())
DATES = [f"2024-01-0{day}" for day in range(1, 8)]
EXPECTED = [*WRAPPERS, *(f"{name}@deployed" for name in ORCHESTRATORS)]  # the order run
# The verdict's order: the reference runner, the local wrappers, then the deployed ones.
VERDICT_ORDER = [
    "reference",
    *sorted(ORCHESTRATORS),
    *(f"{name}@deployed" for name in sorted(ORCHESTRATORS)),
]


def test_make_all_deployed_compares_both_modes_and_leaves_the_stack_as_found(tmp_path):
    was_up = "RUNNING" in make("status").stdout
    result = make("all", "MODE=deployed", f"OUTPUT_ROOT={tmp_path}")
    assert result.returncode == 0, result.stdout + result.stderr

    lines = result.stdout.splitlines()
    runs = [line.split(" ok in ")[0] for line in lines if " ok in " in line]
    assert runs == [f"all: {kind}{name}" for kind in ("", "backfill-") for name in EXPECTED]
    assert lines[-1] == (
        f"VERDICT: IDENTICAL: 16 outputs, byte for byte, across {', '.join(VERDICT_ORDER)}"
    )
    for name in ORCHESTRATORS:
        deployed = {"run/metrics": tmp_path / "deployed" / f"{name}_output.parquet"} | {
            f"backfill/{day}/metrics": tmp_path / "deployed" / "backfill" / name / f"{day}.parquet"
            for day in DATES
        }
        for key, path in deployed.items():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == GOLDEN[key], path
    report = json.loads((tmp_path / "parity-report.json").read_text())
    for name in ORCHESTRATORS:
        assert all(group["files"][f"{name}@deployed"]["path"].startswith(f"{tmp_path}/deployed/")
                   for group in report["groups"])  # fmt: skip

    if was_up:
        assert "RUNNING" in make("status").stdout
    else:
        assert lines[0] == "stack: down, starting it for this command (and stopping it after)"
        assert "stack: down (make up starts it)" in make("status").stdout
        assert stack_processes() == []


def test_make_all_deployed_proves_the_pandas_example_in_both_modes(tmp_path):
    """`make all MODE=deployed PIPELINE=examples/shop/shop.py`: the example's run and backfill
    under every wrapper locally and every orchestrator through the stack, one verdict, each
    deployed output against the example's golden file."""
    shop = PROJECT / "examples" / "shop"
    golden = json.loads((shop / "shop.golden.json").read_text())
    result = make("all", "MODE=deployed", f"PIPELINE={shop / 'shop.py'}", f"OUTPUT_ROOT={tmp_path}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("VERDICT: IDENTICAL: 8 outputs"), result.stdout
    deployed = tmp_path / "shop" / "deployed"
    for name in ORCHESTRATORS:
        for key, digest in golden.items():
            kind, *where = key.split("/")  # run/<output> or backfill/<date>/<output>
            folder = deployed / name if kind == "run" else deployed / "backfill" / name / where[0]
            path = folder / f"{where[-1]}.parquet"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path
