"""Airflow DAG integrity: the events pipeline's DAG, as the adapter's DAG folder builds it from
the declaration (airflow/pipeline_dag.py), imports cleanly in the Airflow environment, with its
steps' edges, its params typed and the declared retries set (cheap, and it catches a broken DAG
before any run)."""

import json
import os
import subprocess

import pytest

from tests.conftest import PROJECT

pytestmark = pytest.mark.orchestrators

PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
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
    "callbacks": sorted(name for name in ("on_retry_callback", "on_failure_callback")
                        if all(getattr(t, name) for t in dag.tasks)) if dag else [],
}))
"""


@pytest.fixture(scope="module")
def dag_facts() -> dict:
    python = PROJECT / ".venvs" / "airflow" / "bin" / "python"
    environment = {**os.environ, "PARITY_PIPELINE": "shared_etl.pipeline",
                   "AIRFLOW_HOME": str(PROJECT / ".state" / "airflow-pipelines"),
                   "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}  # fmt: skip
    result = subprocess.run(
        [str(python), "-c", PROBE, str(PROJECT / "airflow" / "pipeline_dags")],
        capture_output=True, text=True, cwd=PROJECT, env=environment, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_dag_folder_imports_without_errors(dag_facts):
    assert dag_facts["import_errors"] == {}
    assert dag_facts["dag_ids"] == ["events_daily_metrics"]


def test_each_step_feeds_the_next_and_the_declared_ones_retry(dag_facts):
    """shared_etl/pipeline.py: `validated` and `metrics` are tried twice more, 1 s apart."""
    tasks = dag_facts["tasks"]
    publish = tasks.pop("publish")
    assert tasks == {
        "validated": {"retries": 2, "retry_delay": 1.0, "upstream": []},
        "metrics": {"retries": 2, "retry_delay": 1.0, "upstream": ["validated"]},
        "rejects": {"retries": 0, "retry_delay": 0.0, "upstream": ["validated"]},
    }
    # The adapter's last task writes the outputs once every step is done; never retried.
    assert (publish["retries"], publish["upstream"]) == (0, ["metrics", "rejects", "validated"])
    assert dag_facts["callbacks"] == ["on_failure_callback", "on_retry_callback"]


def test_params_are_typed_with_defaults(dag_facts):
    params = dag_facts["params"]
    assert set(params) == {"input_path", "date"}
    assert params["input_path"]["type"] == "string"
    assert set(params["date"]["type"]) == {"null", "string"}
    assert params["date"]["format"] == "date"
    assert dag_facts["tags"] == ["orchestrator-parity", "pipeline"]
