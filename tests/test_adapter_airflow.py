"""airflow/adapter.py: any declared pipeline as a native Airflow DAG, run in local mode. The
expected bytes come from the reference runner (`python -m parity`), Airflow's own view of the
params, the tries and the runs from Airflow's API, read in the Airflow environment.

The adapter's runs are slow (a dag.test() of three tiny tasks takes 12-30 s here), so each is
made once per module, one after another: side by side they were slower still (they wait on one
SQLite database), and dag.test() replaces an earlier run of the same logical date, so the
`date` run comes before the backfill whose runs the tests read."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT

pytestmark = pytest.mark.orchestrators

AIRFLOW_PYTHON = PROJECT / ".venvs" / "airflow" / "bin" / "python"
ADAPTER = PROJECT / "airflow" / "adapter.py"
AIRFLOW_HOME = PROJECT / ".state" / "airflow-pipelines"
ORDERS = PROJECT / "tests" / "pipelines" / "orders"
ENV = {"ETL_STAGING_ROOT": str(PROJECT / ".state" / "staging"), "PYTHONPATH": str(PROJECT)}
FAULT = {"PARITY_FAIL_STEP": "daily_revenue"}
MIN_8 = '{"orders_csv": "orders.csv", "min_amount": 8}'
BACKFILL = ("--start", "2024-01-01", "--end", "2024-01-03")
# name: (command and arguments after the pipeline, extra environment), in the order run
RUNS = {
    "sample": (["run"], {}),
    "date": (["run", "--date", "2024-01-03"], {}),
    "params": (["run", "--params", MIN_8], {}),
    "backfill": (["backfill", *BACKFILL], {}),
    "retried": (["run"], {**FAULT, "PARITY_FAIL_ATTEMPTS": "2"}),
    "exhausted": (["run"], {**FAULT, "PARITY_FAIL_ATTEMPTS": "3"}),
    "bad_input": (["run", "--params", '{"orders_csv": "no_amount.csv"}'], {}),
}
REFERENCE = ["sample", "date", "params", "backfill"]

RECORDS_PROBE = """
import json, sys
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.models.taskinstancehistory import TaskInstanceHistory
from airflow.utils.session import create_session
found = {}
with create_session() as session:
    for run_id in sys.argv[1:]:
        run = session.query(DagRun).filter_by(dag_id="orders", run_id=run_id).one_or_none()
        if run is None:  # replaced by a later dag.test() of the same logical date
            continue
        tasks = {}
        for ti in session.query(TaskInstance).filter_by(dag_id="orders", run_id=run_id):
            earlier = session.query(TaskInstanceHistory).filter_by(
                dag_id="orders", run_id=run_id, task_id=ti.task_id).count()
            tasks[ti.task_id] = {"try_number": ti.try_number, "state": str(ti.state),
                                 "earlier_tries": earlier}
        found[run_id] = {"state": str(run.state), "tasks": tasks,
                         "logical_date": run.logical_date and run.logical_date.isoformat()}
print(json.dumps(found))
"""

DAG_PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.definitions._internal.types import is_arg_set
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("orders")
params = {}
for name in dag.params:
    param = dag.params.get_param(name)
    params[name] = {"schema": param.schema, "description": param.description,
                    "default": param.value if is_arg_set(param.value) else "<none: required>"}
print(json.dumps({
    "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "params": params,
    "tasks": {t.task_id: {"retries": t.retries, "retry_delay": t.retry_delay.total_seconds(),
                          "upstream": sorted(t.upstream_task_ids)} for t in dag.tasks},
}))
"""


def airflow_python(code: str, *args: str, env: dict | None = None) -> dict:
    environment = {**os.environ, "AIRFLOW_HOME": str(AIRFLOW_HOME),
                   "AIRFLOW__CORE__LOAD_EXAMPLES": "False", **(env or {})}  # fmt: skip
    result = subprocess.run([str(AIRFLOW_PYTHON), "-c", code, *args], capture_output=True,
                            text=True, cwd=PROJECT, env=environment, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The example pipeline with its sample, and a CSV without an amount column."""
    where = tmp_path_factory.mktemp("orders")
    for name in ("orders.py", "orders.csv"):
        shutil.copy(ORDERS / name, where / name)
    (where / "no_amount.csv").write_text("order_id,order_date,customer_id\no1,2024-01-01,c1\n")
    return where


def command(python: list[str], name: str, folder: Path, out: str) -> subprocess.CompletedProcess:
    arguments, extra = RUNS[name]
    args = [arguments[0], str(folder / "orders.py"), *arguments[1:], "--output-dir", out]
    return subprocess.run([*python, *args], cwd=folder, capture_output=True, text=True,
                          env={**os.environ, **ENV, **extra}, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def runs(folder) -> dict[str, subprocess.CompletedProcess]:
    """Every adapter run of this module and the reference runs it is compared with."""

    for name in REFERENCE:
        result = command([sys.executable, "-m", "parity"], name, folder, f"reference-{name}")
        assert result.returncode == 0, f"reference {name}: {result.stderr}"
    adapter = [str(AIRFLOW_PYTHON), str(ADAPTER)]
    return {name: command(adapter, name, folder, f"airflow-{name}") for name in RUNS}


def run_ids(result: subprocess.CompletedProcess) -> list[str]:
    return re.findall(r"^airflow: orders: dag run (\S+): ", result.stdout, re.MULTILINE)


@pytest.fixture(scope="module")
def records(runs) -> dict:
    """Airflow's own record of each run: its state, logical date, and each task's tries."""
    ids = [run_id for result in runs.values() for run_id in run_ids(result)]
    return airflow_python(RECORDS_PROBE, *ids)


def dag_runs() -> int | None:
    """How many runs of the DAG Airflow's metadata database holds (None: no database)."""
    database = AIRFLOW_HOME / "airflow.db"
    if not database.exists():
        return None
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master")}
        if "dag_run" not in tables:
            return 0
        query = "select count(*) from dag_run where dag_id = 'orders'"
        return connection.execute(query).fetchone()[0]


# First in the module: no other run of the DAG is being made while it counts them.
def test_params_of_the_wrong_type_are_refused_before_airflow_runs(folder, tmp_path):
    before = dag_runs()
    started = time.monotonic()
    result = subprocess.run(
        [str(AIRFLOW_PYTHON), str(ADAPTER), "run", str(folder / "orders.py"), "--params",
         '{"orders_csv": "orders.csv", "min_amount": "8"}', "--output-dir", str(tmp_path / "o")],
        cwd=folder, capture_output=True, text=True, env={**os.environ, **ENV}, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == ['error: PARAMS: min_amount: "8" is not a whole number']
    assert elapsed < 10, f"{elapsed:.1f} s: an Airflow run was started"
    assert dag_runs() == before
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["sample", "date", "params"])
def test_a_run_writes_the_reference_bytes(runs, folder, name):
    result = runs[name]
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr  # task logs go to the run's log file
    assert_same_outputs(folder / f"airflow-{name}", folder / f"reference-{name}")


def test_a_backfill_is_one_airflow_run_per_date_with_the_reference_bytes(runs, records, folder):
    result = runs["backfill"]
    assert result.returncode == 0, result.stderr
    days = ["2024-01-01", "2024-01-02", "2024-01-03"]
    got, expected = folder / "airflow-backfill", folder / "reference-backfill"
    assert sorted(path.name for path in got.iterdir()) == days
    for day in days:
        assert_same_outputs(got / day, expected / day)
    logical = [records[run_id]["logical_date"][:10] for run_id in run_ids(result)]
    assert logical == days
    assert all(records[run_id]["state"] == "success" for run_id in run_ids(result))


def assert_same_outputs(got: Path, expected: Path) -> None:
    parquet = sorted(path.name for path in expected.glob("*.parquet"))
    assert parquet and sorted(path.name for path in got.glob("*.parquet")) == parquet
    for name in parquet:
        assert (got / name).read_bytes() == (expected / name).read_bytes(), f"{got / name}"
    manifest = json.loads((got / "manifest.json").read_text())
    assert manifest["wrapper"]["name"] == "airflow"
    assert re.fullmatch(r"3\.\d+\.\d+", manifest["wrapper"]["version"])
    assert manifest["wrapper"]["run_id"]
    reference = json.loads((expected / "manifest.json").read_text())
    assert manifest["parameters"] == reference["parameters"]


def test_the_params_are_airflows_own_typed_params(folder):
    facts = airflow_python(DAG_PROBE, str(PROJECT / "airflow" / "pipeline_dags"),
                           env={"PARITY_PIPELINE": str(folder / "orders.py")})  # fmt: skip
    assert facts["import_errors"] == {}
    params = facts["params"]
    assert set(params) == {"orders_csv", "min_amount", "date"}
    assert params["orders_csv"]["schema"] == {"type": "string"}
    assert params["orders_csv"]["default"] == "<none: required>"  # the form asks for it
    assert params["min_amount"]["schema"] == {"type": "integer"}
    assert params["min_amount"]["default"] == 0
    date = params["date"]["schema"]
    assert set(date["type"]) == {"string", "null"} and date["format"] == "date"
    assert params["date"]["default"] is None
    assert params["date"]["description"] == "date | None"
    tasks = facts["tasks"]
    assert list(tasks) == ["orders", "daily_revenue", "publish"]
    assert tasks["orders"] == {"retries": 0, "retry_delay": 0.0, "upstream": []}
    assert tasks["daily_revenue"] == {"retries": 2, "retry_delay": 1.0, "upstream": ["orders"]}
    assert tasks["publish"]["retries"] == 0
    assert tasks["publish"]["upstream"] == ["daily_revenue", "orders"]


def test_airflow_retries_a_transient_failure_until_it_passes(runs, records, folder):
    result = runs["retried"]
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr  # the failed tries are in the run's log file
    manifest = json.loads((folder / "airflow-retried" / "manifest.json").read_text())
    assert manifest["attempts"] == {"orders": 1, "daily_revenue": 3}
    task = records[manifest["wrapper"]["run_id"]]["tasks"]["daily_revenue"]
    assert task == {"try_number": 3, "state": "success", "earlier_tries": 2}
    assert_same_outputs(folder / "airflow-retried", folder / "reference-sample")


def test_a_step_that_fails_every_try_fails_the_run_in_one_line(runs, records, folder):
    result = runs["exhausted"]
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: daily_revenue: injected transient failure on attempt 3 (PARITY_FAIL_ATTEMPTS=3)"
    ]
    (run_id,) = run_ids(result)
    assert records[run_id]["tasks"]["daily_revenue"]["try_number"] == 3
    assert records[run_id]["state"] == "failed"
    assert list((folder / "airflow-exhausted").iterdir()) == []  # nothing published


def test_an_input_error_is_tried_once_and_exits_2(runs, records, folder):
    result = runs["bad_input"]
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: step 'orders': {folder / 'no_amount.csv'}: no amount column"
    ]
    (run_id,) = run_ids(result)
    tasks = records[run_id]["tasks"]
    assert tasks["orders"] == {"try_number": 1, "state": "failed", "earlier_tries": 0}
    assert tasks["daily_revenue"]["try_number"] == 0
