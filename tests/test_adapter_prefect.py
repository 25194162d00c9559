"""prefect/adapter.py, the generic Prefect adapter: the contract's example pipeline (saved outside
the project) run as native Prefect definitions writes the reference runner's bytes, shows its
parameters in Prefect's own schema, retries under Prefect's own policy, and fails in one line.
Expected bytes and error lines come from the reference runner (python -m parity), never from
the adapter itself."""

import json
import os
import shutil
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import PROJECT

pytestmark = pytest.mark.orchestrators

PREFECT_PYTHON = PROJECT / ".venvs" / "prefect" / "bin" / "python"
ADAPTER = PROJECT / "prefect" / "adapter.py"
ORDERS = PROJECT / "tests" / "pipelines" / "orders"
STAGING = {"ETL_STAGING_ROOT": str(PROJECT / ".state" / "staging")}  # as the Makefile sets it
RANGE = ["--start", "2024-01-01", "--end", "2024-01-03"]
FAULT = {"PARITY_FAIL_STEP": "daily_revenue"}
NO_AMOUNT = ["--params", '{"orders_csv": "no_amount.csv"}']
WRONG_TYPE = ["--params", '{"orders_csv": "orders.csv", "min_amount": "8"}']
# name: (command, pipeline, options, environment). Every run is independent of the others, so
# the module starts them side by side (RUNS_AT_ONCE): a Prefect run is mostly start-up.
CASES = {
    "sample": ("run", "orders.py", [], {}),
    "date": ("run", "orders.py", ["--date", "2024-01-03"], {}),
    "params": ("run", "orders.py", ["--params", '{"orders_csv": "orders.csv", "min_amount": 8}'],
               {}),
    "backfill": ("backfill", "orders.py", RANGE, {}),
    "retried": ("run", "orders.py", [], {**FAULT, "PARITY_FAIL_ATTEMPTS": "2"}),
    "exhausted": ("run", "orders.py", [], {**FAULT, "PARITY_FAIL_ATTEMPTS": "3"}),
    "input_error": ("run", "orders.py", NO_AMOUNT, {}),
    "input_error_retried": ("run", "orders_retried.py", NO_AMOUNT, {}),
    "wrong_type": ("run", "orders.py", WRONG_TYPE, {}),  # gets a Prefect home of its own
}  # fmt: skip
RUNS_AT_ONCE = 3


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The example pipeline and its sample in a folder of their own, plus a CSV that has no
    amount column, and a copy of the pipeline whose first step has retries."""
    folder = tmp_path_factory.mktemp("orders")
    for name in ("orders.py", "orders.csv"):
        shutil.copy(ORDERS / name, folder / name)
    (folder / "no_amount.csv").write_text("order_id,order_date,customer_id\no1,2024-01-01,c1\n")
    source = (ORDERS / "orders.py").read_text()
    retried = source.replace("@step\ndef orders(", "@step(retries=2)\ndef orders(")
    assert retried != source
    (folder / "orders_retried.py").write_text(retried)
    return folder


def adapter(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PREFECT_PYTHON), str(ADAPTER), *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **STAGING, **(env or {})}, check=False, timeout=300,
    )  # fmt: skip


def reference(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "parity", *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **STAGING, "PYTHONPATH": str(PROJECT), **(env or {})}, check=False,
        timeout=120,
    )  # fmt: skip


def in_prefect(code: str, *args: str) -> object:
    """What `code` prints as JSON, run in the Prefect environment with the adapter imported."""
    prelude = f"import json, sys; sys.path.insert(0, {str(ADAPTER.parent)!r}); import adapter\n"
    result = subprocess.run(
        [str(PREFECT_PYTHON), "-c", prelude + code, *args], capture_output=True, text=True,
        env={**os.environ, **STAGING}, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def last_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def parquet_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.parquet"))}


class Run:
    """One case run by the reference runner and by the adapter, each into its own folder."""

    def __init__(self, name: str, folder: Path, out: Path) -> None:
        command, pipeline, options, env = CASES[name]
        self.reference_dir, self.prefect_dir = out / "reference", out / "prefect"
        self.prefect_home = out / "prefect-home"
        if name == "wrong_type":  # any Prefect run would leave its database in this home
            env = {**env, "PREFECT_HOME": str(self.prefect_home)}
        self.reference = reference(command, pipeline, *options, "--output-dir",
                                   str(self.reference_dir), cwd=folder, env=env)  # fmt: skip
        self.prefect = adapter(command, pipeline, *options, "--output-dir", str(self.prefect_dir),
                               cwd=folder, env=env)  # fmt: skip
        self.task_runs = None
        if name == "retried" and self.prefect.returncode == 0:
            flow_run = json.loads((self.prefect_dir / "manifest.json").read_text())["wrapper"]
            self.task_runs = in_prefect(_TASK_RUNS, flow_run["flow_run_id"])


@pytest.fixture(scope="module")
def runs(folder, tmp_path_factory) -> dict[str, Run]:
    out = tmp_path_factory.mktemp("runs")
    with ThreadPoolExecutor(RUNS_AT_ONCE) as pool:
        started = {name: pool.submit(Run, name, folder, out / name) for name in CASES}
        return {name: future.result() for name, future in started.items()}


_TASK_RUNS = """
import time
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
only = FlowRunFilter(id=FlowRunFilterId(any_=[sys.argv[1]]))
deadline = time.monotonic() + 60
with get_client(sync_client=True) as client:
    while True:  # task runs reach the API asynchronously
        runs = {run.name: run for run in client.read_task_runs(flow_run_filter=only)}
        done = all(run.state is not None and run.state.is_final() for run in runs.values())
        if runs and done or time.monotonic() > deadline:
            break
        time.sleep(1)
    print(json.dumps({name: {"run_count": run.run_count, "state": run.state.name,
        "states": [s.name for s in client.read_task_run_states(run.id)]}
        for name, run in runs.items()}))
"""


@pytest.mark.parametrize("case", ["sample", "date", "params", "backfill"])
def test_outputs_are_the_reference_runners_bytes(runs, case):
    run = runs[case]
    assert run.reference.returncode == 0, run.reference.stderr
    assert run.prefect.returncode == 0, run.prefect.stdout + run.prefect.stderr
    wanted = parquet_files(run.reference_dir)
    assert len(wanted) == (3 if case == "backfill" else 1)
    assert parquet_files(run.prefect_dir) == wanted  # same names, same bytes
    for name in wanted:
        manifest_path = Path(name).with_name("manifest.json")
        manifest = json.loads((run.prefect_dir / manifest_path).read_text())
        theirs = json.loads((run.reference_dir / manifest_path).read_text())
        wrapper = manifest["wrapper"]
        assert wrapper["name"] == "prefect" and wrapper["version"].startswith("3.")
        uuid.UUID(wrapper["flow_run_id"])
        for field in ("parameters", "inputs", "outputs", "attempts", "pipeline"):
            assert manifest[field] == theirs[field], field


def test_the_run_parameters_are_prefects_own_typed_parameters(folder):
    schemas = in_prefect(
        "from parity.loader import load\n"
        "one, backfill = adapter.build(load(sys.argv[1])[0])\n"
        "print(json.dumps({'one': one.parameters.model_dump(),"
        " 'backfill': backfill.parameters.model_dump()}))",
        str(folder / "orders.py"),
    )
    one = schemas["one"]
    properties = one["properties"]
    assert properties["orders_csv"]["type"] == "string"
    assert "default" not in properties["orders_csv"]
    assert properties["min_amount"]["type"] == "integer"
    assert properties["min_amount"]["default"] == 0
    assert properties["date"]["default"] is None
    assert {"type": "string", "format": "date"} in properties["date"]["anyOf"]
    assert {"type": "null"} in properties["date"]["anyOf"]
    assert set(one["required"]) == {"orders_csv", "output_dir"}

    backfill = schemas["backfill"]
    assert "date" not in backfill["properties"]  # the range gives the dates
    for bound in ("start", "end"):
        assert backfill["properties"][bound] == {**backfill["properties"][bound],
                                                 "type": "string", "format": "date"}  # fmt: skip
    assert backfill["properties"]["min_amount"]["default"] == 0
    assert set(backfill["required"]) == {"orders_csv", "start", "end", "output_dir"}


def test_a_transient_failure_is_retried_by_prefect(runs):
    run = runs["retried"]
    assert run.reference.returncode == 1  # the reference runner makes no retries
    assert run.prefect.returncode == 0, run.prefect.stdout + run.prefect.stderr
    assert parquet_files(run.prefect_dir) == parquet_files(runs["sample"].reference_dir)
    manifest = json.loads((run.prefect_dir / "manifest.json").read_text())
    assert manifest["attempts"] == {"orders": 1, "daily_revenue": 3}
    assert "Retry 1/2" in run.prefect.stdout and "Retry 2/2" in run.prefect.stdout
    # Prefect's own record, read back through its API.
    assert run.task_runs["daily_revenue"]["run_count"] == 3, run.task_runs
    assert run.task_runs["daily_revenue"]["state"] == "Completed"
    assert run.task_runs["daily_revenue"]["states"].count("Retrying") == 2
    assert run.task_runs["orders"]["run_count"] == 1


def test_a_step_whose_retries_are_used_up_fails_in_one_line(runs):
    run = runs["exhausted"]
    assert run.reference.returncode == 1
    assert run.prefect.returncode == 1, run.prefect.stdout + run.prefect.stderr
    assert last_line(run.prefect).startswith("error: daily_revenue: ")
    assert "attempt 3" in last_line(run.prefect)
    assert "Retry 2/2" in run.prefect.stdout
    assert not (run.prefect_dir / "daily_revenue.parquet").exists()


@pytest.mark.parametrize("case", ["input_error", "input_error_retried"])
def test_an_input_error_is_one_line_exit_2_and_never_retried(runs, folder, case):
    """`input_error_retried` gives the failing step retries=2: Prefect must still not retry."""
    run = runs[case]
    assert run.reference.returncode == 2
    assert run.prefect.returncode == 2, run.prefect.stdout + run.prefect.stderr
    wanted = f"error: step 'orders': {folder / 'no_amount.csv'}: no amount column"
    assert last_line(run.prefect) == last_line(run.reference) == wanted
    assert run.prefect.stdout.count("task orders - Finished in state Failed") == 1
    assert "Retry " not in run.prefect.stdout, run.prefect.stdout
    assert not run.prefect_dir.exists() or not any(run.prefect_dir.iterdir())


def test_params_of_the_wrong_type_are_refused_before_prefect_runs_anything(runs):
    run = runs["wrong_type"]
    assert run.prefect.returncode == run.reference.returncode == 2
    assert run.prefect.stderr.strip().splitlines() == [last_line(run.reference)]
    assert "min_amount" in run.prefect.stderr
    assert "flow run" not in run.prefect.stdout
    home = run.prefect_home
    assert not home.exists() or not any(home.iterdir()), list(home.iterdir())
