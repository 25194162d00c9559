"""A declared pipeline of a user's, run through each orchestrator of the deployed stack
(`make <wrapper> MODE=deployed PIPELINE=p`, and its backfill), writes the bytes its golden file
records; two pipelines run side by side, each untouched by the other.

The pipelines: a copy of tests/pipelines/orders/ in a temporary folder outside the project,
as a user's would be, and examples/shop/shop.py. Their golden files (<name>.golden.json,
beside each) are the independent record: sha256 of each output, written by `make bless`
from the reference runner. One stack for the whole module; per orchestrator, the four runs
(each pipeline's run and backfill) are started at once.
"""

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ORDERS, PROJECT, user_environment
from tests.deployed.conftest import up

pytestmark = pytest.mark.deployed

SHOP = PROJECT / "examples" / "shop" / "shop.py"
DATES = {"orders": ("2024-01-01", "2024-01-03"), "shop": ("2024-03-01", "2024-03-03")}


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory) -> dict[str, Path]:
    """Each pipeline's file, by name: orders copied outside the project, shop in place."""
    folder = tmp_path_factory.mktemp("my-pipelines")
    for name in ("orders.py", "orders.csv", "orders.golden.json"):
        shutil.copy(ORDERS / name, folder / name)
    assert not folder.is_relative_to(PROJECT)
    up()
    return {"orders": folder / "orders.py", "shop": SHOP}


def golden(pipeline: Path) -> dict[str, str]:
    return json.loads(pipeline.with_name(f"{pipeline.stem}.golden.json").read_text())


def written(run_dir: Path, backfill_dir: Path) -> dict[str, str]:
    """sha256 of each output, by the golden file's key (run/<output>, backfill/<D>/<output>)."""
    found = {f"run/{path.stem}": path for path in run_dir.glob("*.parquet")}
    found |= {f"backfill/{path.parent.name}/{path.stem}": path
              for path in backfill_dir.glob("*/*.parquet")}  # fmt: skip
    return {key: hashlib.sha256(path.read_bytes()).hexdigest() for key, path in found.items()}


@pytest.mark.parametrize("wrapper", ["prefect", "dagster", "airflow"])
def test_two_pipelines_side_by_side_write_their_golden_bytes(wrapper, pipelines, tmp_path):
    commands = {}
    for name, path in pipelines.items():
        start, end = DATES[name]
        common = ["make", "--no-print-directory", "MODE=deployed", f"PIPELINE={path}"]
        commands[f"{name} run"] = [*common, wrapper, f"OUTPUT_DIR={tmp_path / name / 'run'}"]
        commands[f"{name} backfill"] = [*common, f"backfill-{wrapper}", f"START={start}",
                                        f"END={end}", f"OUTPUT_DIR={tmp_path / name}"]  # fmt: skip
    started = {label: subprocess.Popen(command, cwd=PROJECT, env=user_environment(),
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for label, command in commands.items()}  # fmt: skip
    outputs = {label: process.communicate(timeout=900)[0] for label, process in started.items()}
    for label, process in started.items():
        assert process.returncode == 0, f"{label}:\n{outputs[label]}"
    for name, path in pipelines.items():
        assert written(tmp_path / name / "run", tmp_path / name / wrapper) == golden(path), name
