"""Airflow DAG integrity: the DAG folder imports cleanly in the Airflow environment, with its
params typed and retries set (cheap, and it catches a broken DAG before any run)."""

import json
import subprocess

import pytest

from tests.conftest import PROJECT

pytestmark = pytest.mark.orchestrators

PROBE = """
import json, os
os.environ.setdefault("AIRFLOW_HOME", os.path.join(os.getcwd(), ".state", "airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder="airflow/dags")
dag = bag.dags.get("events_daily_metrics")
print(json.dumps({
    "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dags),
    "tasks": {
        t.task_id: {"retries": t.retries, "retry_delay": t.retry_delay.total_seconds(),
                    "upstream": sorted(t.upstream_task_ids)}
        for t in dag.tasks
    } if dag else {},
    "params": {k: dag.params.get_param(k).schema for k in dag.params} if dag else {},
    "tags": sorted(dag.tags) if dag else [],
}))
"""


@pytest.fixture(scope="module")
def dag_facts() -> dict:
    python = PROJECT / ".venvs" / "airflow" / "bin" / "python"
    result = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True,
                            cwd=PROJECT, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_dag_folder_imports_without_errors(dag_facts):
    assert dag_facts["import_errors"] == {}
    assert dag_facts["dag_ids"] == ["events_daily_metrics"]


def test_prepare_feeds_aggregate_and_both_retry(dag_facts):
    assert dag_facts["tasks"] == {
        "prepare": {"retries": 2, "retry_delay": 1.0, "upstream": []},
        "aggregate": {"retries": 2, "retry_delay": 1.0, "upstream": ["prepare"]},
    }


def test_params_are_typed_with_defaults(dag_facts):
    params = dag_facts["params"]
    assert set(params) == {"input_path", "output_path", "date", "output_dir"}
    assert params["input_path"]["type"] == "string"
    assert params["date"] == {"type": ["null", "string"], "format": "date"}
    assert dag_facts["tags"] == ["orchestrator-parity"]
