"""The events pipeline as an Airflow 3 DAG (TaskFlow, `airflow.sdk`): tasks call shared_etl.

    python airflow/dags/events_daily_metrics.py --input-path IN --output-path OUT [--date D]
    python airflow/dags/events_daily_metrics.py --input-path IN --start D1 --end D2 --output-dir DIR

Two tasks, `prepare` then `aggregate`; only the small JSON-able handle of the staged files
passes through XCom. Parameters are DAG `params` (typed `Param`s), overridable by the run's
conf. The date window is the `date` param, or, for a run that a backfill created, the run's
logical date (output `output_dir/<date>.parquet`). Retries are Airflow's own (`retries`,
`retry_delay`); a deterministic failure (bad input) raises AirflowFailException so it is not
retried; the attempt handed to shared_etl is the task instance's `try_number`.

From the command line, one run is `dag.test()`: a real DAG run, recorded in Airflow's
metadata database, executed in this process without leaving a daemon behind.
"""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
STATE = PROJECT / ".state"
for _name, _value in {
    "AIRFLOW_HOME": str(STATE / "airflow"),
    "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).parent),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    "ETL_STAGING_ROOT": str(STATE / "staging"),
}.items():
    os.environ.setdefault(_name, _value)

import pendulum  # noqa: E402
from airflow.sdk import Param, dag, get_current_context, task  # noqa: E402
from airflow.sdk.exceptions import AirflowFailException  # noqa: E402

import shared_etl  # noqa: E402

RETRIES = 2

# What a failed task raised, as Airflow's on_failure_callback saw it. Only the command line
# (dag.test, where tasks run in this process) reads it, to end with the step's own message.
_failed_with: list[BaseException] = []


def _remember_failure(context) -> None:
    if context.get("exception") is not None:
        _failed_with.append(context["exception"])


def _step(run, *args, **kwargs):
    """Run a shared_etl step; what no retry can cure fails the task without retries."""
    try:
        return run(*args, **kwargs)
    except Exception as exc:
        if shared_etl.is_retryable(exc):
            raise
        raise AirflowFailException(str(exc)) from exc


@dag(
    dag_id="events_daily_metrics",
    schedule="@daily",
    start_date=pendulum.datetime(2000, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=True,
    tags=["orchestrator-parity"],
    default_args={
        "retries": RETRIES,
        "retry_delay": timedelta(seconds=1),
        "on_failure_callback": _remember_failure,
    },
    params={
        "input_path": Param("data/synthetic_events.csv", type="string"),
        "output_path": Param("output/airflow_output.parquet", type="string"),
        "date": Param(None, type=["null", "string"], format="date"),
        "output_dir": Param("output/backfill/airflow", type="string"),
    },
)
def events_daily_metrics():
    @task
    def prepare() -> dict:
        context = get_current_context()
        staging = shared_etl.new_staging_dir(f"airflow-{context['run_id']}")
        prepared = _step(
            shared_etl.prepare,
            context["params"]["input_path"],
            staging,
            attempt=context["ti"].try_number,
        )
        print(
            f"prepare: {prepared.records_read} records read: {prepared.kept} kept, "
            f"{prepared.rejected} rejected, {prepared.duplicates} duplicates"
        )
        return prepared.to_dict()

    @task
    def aggregate(prepared: dict) -> dict:
        context = get_current_context()
        params, run = context["params"], context["dag_run"]
        date, output_path = params["date"], params["output_path"]
        if run.run_type == "backfill":
            date = context["logical_date"].date().isoformat()
            output_path = os.path.join(params["output_dir"], f"{date}.parquet")
        result = _step(
            shared_etl.aggregate,
            shared_etl.PreparedRun.from_dict(prepared),
            output_path,
            date=date,
            attempt=context["ti"].try_number,
            orchestrator={
                "name": "airflow",
                "version": _airflow_version(),
                "dag_id": run.dag_id,
                "run_id": run.run_id,
            },
        )
        print(f"aggregate: wrote {output_path}: {result.metric_rows} metric rows")
        shared_etl.discard_staging(prepared["staging_dir"])
        return result.to_dict()

    aggregate(prepare())


def _airflow_version() -> str:
    from airflow import __version__

    return __version__


events_dag = events_daily_metrics()


def run_one(input_path: str, output_path: str, date: str | None) -> None:
    shared_etl.check_output_path(output_path)
    shared_etl.parse_date(date)
    _test_run({"input_path": input_path, "output_path": output_path, "date": date})


def run_backfill(input_path: str, start: str, end: str, output_dir: str) -> None:
    for day in shared_etl.dates_between(start, end):
        output_path = os.path.join(output_dir, f"{day}.parquet")
        _test_run(
            {"input_path": input_path, "output_path": output_path, "date": day},
            logical_date=pendulum.parse(day),
        )


def _test_run(conf: dict, logical_date=None) -> None:
    _migrate_once()
    _failed_with.clear()
    run = events_dag.test(run_conf=conf, logical_date=logical_date)
    if run.state == "success":
        return
    for error in _failed_with:
        cause = error.__cause__ if isinstance(error, AirflowFailException) else error
        if isinstance(cause, shared_etl.PipelineError):
            raise cause
    raise shared_etl.PipelineError(f"airflow dag run {run.run_id} ended {run.state}")


def _migrate_once() -> None:
    """`airflow db migrate` the first time this AIRFLOW_HOME is used (a few seconds)."""
    if not (Path(os.environ["AIRFLOW_HOME"]) / "airflow.db").exists():
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            stdout=subprocess.DEVNULL,
        )


if __name__ == "__main__":
    from shared_etl.cli import run_command

    sys.exit(run_command(f"python {__file__}", __doc__, run_one, run_backfill))
