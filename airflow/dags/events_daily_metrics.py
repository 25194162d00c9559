"""The events pipeline as an Airflow 3 DAG (TaskFlow, `airflow.sdk`): tasks call shared_etl.

Two tasks, `prepare` then `aggregate`; only the small JSON-able handle of the staged files
passes through XCom. Parameters are DAG `params` (typed `Param`s), overridable by the run's
conf. The date window is the `date` param, or, for a run that a backfill created, the run's
logical date (output `output_dir/<date>.parquet`). Retries are Airflow's own (`retries`,
`retry_delay`); a deterministic failure (bad input) raises AirflowFailException so it is not
retried; the attempt handed to shared_etl is the try within this run of the task (a
backfill that reprocesses a date clears its task instances, whose `try_number` counts on).

Run it with `airflow/run.py` (`make airflow`, `make backfill-airflow`), which also sets the
project's AIRFLOW_HOME, or with Airflow's own `airflow dags test` / `airflow backfill create`.
"""

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

import shared_etl
from parity import console
from parity.faults import attempt_in_run
from parity.staging import is_held

RETRIES = 2

# What a failed task raised, as Airflow's on_failure_callback saw it. Only airflow/run.py
# (dag.test, where tasks run in its process) reads it, to end with the step's own message.
failures_seen: list[BaseException] = []

# The XCom key under which a failing task leaves its one-line error, so that a driver whose
# tasks ran in other processes (a backfill's scheduler, Celery workers) can end with it.
ERROR_KEY = "error"


# Variables a run's conf may set for its tasks ("env"): in MODE=deployed the tasks run in
# Celery workers, not under the command that asked for the run (airflow/run_deployed.py).
RUN_ENVIRONMENT = ("ETL_FAIL_ATTEMPTS", "ETL_STAGING_ROOT")


def _apply_run_environment(context) -> None:
    """Set the variables the run's conf carries for its tasks. Each task runs in a process
    of its own (Airflow's task supervisor forks one), so they reach no other run.

    The staging area is the one the asking command holds (an flock, parity.staging):
    once no one holds it, that command has ended or was killed, and the run's next task
    fails at once rather than finish work nobody waits for, staging where no one clears."""
    carried = (context["dag_run"].conf or {}).get("env") or {}
    area = carried.get("ETL_STAGING_ROOT")
    if area and not is_held(area):
        raise AirflowFailException(
            f"{area}: the command that asked for this run holds its staging area no more "
            "(it ended or was killed)"
        )
    for name in RUN_ENVIRONMENT:
        if carried.get(name):
            os.environ[name] = str(carried[name])


def _remember_failure(context) -> None:
    if context.get("exception") is not None:
        failures_seen.append(context["exception"])


def announce_retry(context) -> None:
    """One console line per retry: the step, the attempt that failed, why, and the delay."""
    task_instance, error = context["ti"], context.get("exception")
    delay = context["task"].retry_delay
    reason = f"{type(error).__name__}: {error}" if error is not None else "no error recorded"
    console.announce(console.retry_line(
        task_instance.task_id, _attempt(context), reason,
        delay.total_seconds() if delay else 0, attempts=context["task"].retries + 1))  # fmt: skip


def _attempt(context) -> int:
    task_instance = context["ti"]
    return attempt_in_run(task_instance.try_number, task_instance.max_tries,
                          context["task"].retries)  # fmt: skip


def _step(run, *args, **kwargs):
    """Run a shared_etl step; what no retry can cure (bad input, a machine fault) fails the
    task without retries. Either way the error's one line is left in XCom for the driver."""
    try:
        return run(*args, **kwargs)
    except Exception as exc:
        _leave_error(exc)
        if shared_etl.is_retryable(exc):
            raise
        raise AirflowFailException(str(exc)) from exc


def _leave_error(error: Exception) -> None:
    text = str(error).splitlines()[0] if str(error) else ""
    if not isinstance(error, shared_etl.PipelineError):
        text = f"{type(error).__name__}: {text}"
    exit_code = getattr(error, "exit_code", 1)
    get_current_context()["ti"].xcom_push(ERROR_KEY, {"message": text, "exit_code": exit_code})


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
        "on_retry_callback": announce_retry,
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
        _apply_run_environment(context)
        staging = shared_etl.new_staging_dir(f"airflow-{context['run_id']}")
        prepared = _step(
            shared_etl.prepare,
            context["params"]["input_path"],
            staging,
            attempt=_attempt(context),
        )
        print(
            f"prepare: {prepared.records_read} records read: {prepared.kept} kept, "
            f"{prepared.rejected} rejected, {prepared.duplicates} duplicates"
        )
        return prepared.to_dict()

    @task
    def aggregate(prepared: dict) -> dict:
        context = get_current_context()
        _apply_run_environment(context)
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
            attempt=_attempt(context),
            orchestrator={
                "name": "airflow",
                "version": _airflow_version(),
                "dag_id": run.dag_id,
                "run_id": run.run_id,
            },
        )
        # Staging is not removed here: a retry of this task must still find it. The whole
        # area is removed by run.py's run_command when the run ends (or by a later run).
        print(f"aggregate: wrote {output_path}: {result.metric_rows} metric rows")
        return result.to_dict()

    aggregate(prepare())


def _airflow_version() -> str:
    from airflow import __version__

    return __version__


events_dag = events_daily_metrics()
