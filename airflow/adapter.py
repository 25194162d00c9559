"""Any declared pipeline (parity.Pipeline) as a native Airflow 3 DAG, run in local mode.

    python airflow/adapter.py run PIPELINE [--params JSON] [--date YYYY-MM-DD] --output-dir DIR
    python airflow/adapter.py backfill PIPELINE [--params JSON] --start D1 --end D2 --output-dir DIR

One TaskFlow task per step (dependencies as edges, the step's retries as Airflow's), a last
task `publish`, and the run parameters as typed DAG `params`. A run is `dag.test()`: a real
DAG run in the metadata DB under .state/airflow-pipelines (kept apart from the events DAG's
.state/airflow), tasks executed in this process. A backfill is one `dag.test()` per date, with
that date as the run's logical date and `date` param; the steps that do not read the date run
in the first date's run only, and the later runs' tasks of those steps hand back its handles.
Airflow finds the DAG through airflow/pipeline_dags/, which builds it from $PARITY_PIPELINE.
"""

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

# Airflow reads its settings when it is imported: airflow_env.py sets them (for this module an
# Airflow of its own, in .state/airflow-pipelines), so it comes first, from this folder.
sys.path.insert(0, str(Path(__file__).parent))
import airflow_env  # isort: split

import dag_state

from parity import console, layout, liveness
from parity.binding import from_json, to_json
from parity.cli import run_command
from parity.declaration import Parameter, Pipeline
from parity.errors import DeclarationError, PipelineError, is_retryable
from parity.execution import publish_run, run_step, step_failure
from parity.faults import attempt_in_run
from parity.loader import reference_of
from parity.staging import is_held, run_folder

if TYPE_CHECKING:
    from airflow.sdk import DAG

sys.modules.setdefault("adapter", sys.modules[__name__])  # the DAG file imports this module
HOME = airflow_env.PIPELINES_HOME
RUNNING = HOME / "running"  # the liveness locks of the dag.test() runs in progress
PIPELINE_VARIABLE = "PARITY_PIPELINE"
ERROR_KEY = "error"  # the XCom a failed task leaves its one line under
# What a run's conf may set for its tasks under "env" (deployed mode: they run in workers).
RUN_ENVIRONMENT = ("PARITY_FAIL_STEP", "PARITY_FAIL_ATTEMPTS")
STAGING_AREA = "staging_area"  # the conf's key for the area a deployed run stages in
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dt.date: "string"}
# (task_id, exception) of each task that failed for good, as Airflow's failure callback saw it.
failures: list[tuple[str, BaseException]] = []


def build_dag(pipeline: Pipeline) -> "DAG":
    """The pipeline as Airflow's own definitions, so its UI shows the steps, params, retries."""
    from airflow.sdk import DAG, Param, get_current_context, task
    from airflow.sdk.exceptions import AirflowFailException

    if "publish" in pipeline.steps:
        raise DeclarationError("step 'publish': the name is the Airflow adapter's last task")

    def guarded(name: str, work):
        """Every task's wrapper: Airflow retries only what a retry may cure. The variables
        the run's conf carries (`env`, deployed mode) are set first, and the staging area it
        names is checked (_check_area_held); a failure's one line and exit code are left in
        XCom (ERROR_KEY), for a driver outside the worker."""
        context = get_current_context()
        conf = context["dag_run"].conf or {}
        for variable in RUN_ENVIRONMENT:
            if (conf.get("env") or {}).get(variable):
                os.environ[variable] = str(conf["env"][variable])
        values = from_json(pipeline, {n: context["params"].get(n) for n in pipeline.parameters})
        try:
            _check_area_held(name, conf)
            return work(context, conf, values)
        except Exception as exc:
            error = step_failure(name, exc)
            context["ti"].xcom_push(ERROR_KEY, {"message": str(error),
                                                "exit_code": error.exit_code})  # fmt: skip
            if is_retryable(exc):
                raise
            raise AirflowFailException(str(exc)) from exc

    def step_task(name: str):
        def body(handles: dict) -> dict:
            def work(context, conf, values):
                if name in (conf.get("reuse") or {}):  # a backfill's shared step, already run
                    return conf["reuse"][name]
                handle = run_step(pipeline, name, values, handles, conf["staging_dir"],
                                  attempt=_attempt(context))  # fmt: skip
                _check_area_held(name, conf)  # the area may have been cleared meanwhile
                return handle

            return guarded(name, work)

        declared = pipeline.steps[name]
        delay = dt.timedelta(seconds=declared.retry_delay_seconds)
        return task(task_id=name, retries=declared.retries, retry_delay=delay,
                    multiple_outputs=False)(body)  # fmt: skip

    def publish(handles: dict) -> dict:
        def work(context, conf, values):
            run = context["dag_run"]
            wrapper = {"name": "airflow", "version": _version(), "dag_id": run.dag_id,
                       "run_id": run.run_id}  # fmt: skip
            return publish_run(pipeline, values, handles, conf["output_dir"], wrapper)

        return guarded("publish", work)

    with DAG(
        dag_id=pipeline.name,
        schedule=None,
        start_date=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        is_paused_upon_creation=True,
        tags=["orchestrator-parity", "pipeline"],
        params={name: _param(Param, p) for name, p in pipeline.parameters.items()},
        default_args={
            "on_failure_callback": _remember_failure,
            "on_retry_callback": _announce_retry,
        },
    ) as dag:
        handles = {}
        for name in pipeline.order:
            needed = {dependency: handles[dependency] for dependency in pipeline.dependencies[name]}
            handles[name] = step_task(name)(handles=needed)
        task(task_id="publish", multiple_outputs=False)(publish)(handles=handles)
    return dag


def _check_area_held(name: str, conf: dict) -> None:
    """Deployed mode: the run stages inside the area its command holds (conf `staging_area`,
    airflow/run_pipeline_deployed.py), from Celery workers that hold nothing. Once no process
    holds the area's lock, that command has ended or was killed, and any later command clears
    the area as dead (parity.staging), perhaps under this task's feet: the run stops here,
    never retried, and what it staged there goes too, rather than staging where no one waits."""
    area = conf.get(STAGING_AREA)
    if area and not is_held(area):
        shutil.rmtree(area, ignore_errors=True)
        raise PipelineError(f"step {name!r}: {area}: the command that asked for this run holds "
                            "its staging area no more (it ended or was killed)")  # fmt: skip


def _param(param_class: type, parameter: Parameter) -> object:
    """A run parameter as a typed Param: the trigger form shows its type and default."""
    types = [JSON_TYPES[parameter.type]] + (["null"] if parameter.optional else [])
    schema = {"type": types if len(types) > 1 else types[0]}
    if parameter.type is dt.date:
        schema["format"] = "date"
    default = to_json({"d": parameter.default})["d"]
    extra = {} if parameter.required else {"default": default}
    return param_class(description=f"{parameter.annotation}", **extra, **schema)


def _remember_failure(context) -> None:
    if context.get("exception") is not None:
        failures.append((context["ti"].task_id, context["exception"]))


def _attempt(context) -> int:
    """The try within this run of the task: a re-run task instance's `try_number` counts on."""
    task_instance = context["ti"]
    return attempt_in_run(task_instance.try_number, task_instance.max_tries,
                          context["task"].retries)  # fmt: skip


def _announce_retry(context) -> None:
    """One console line per retry: the step, the attempt that failed, why, and the delay."""
    task_instance, declared, error = context["ti"], context["task"], context.get("exception")
    cause = error.__cause__ or error if error is not None else None
    reason = f"{type(cause).__name__}: {cause}" if cause is not None else "no error recorded"
    delay = declared.retry_delay.total_seconds() if declared.retry_delay else 0
    console.announce(console.retry_line(task_instance.task_id, _attempt(context), reason,
                                        delay, attempts=declared.retries + 1))  # fmt: skip


def _version() -> str:
    from airflow import __version__

    return __version__


def run_one(pipeline: Pipeline, values: Mapping[str, object], output_dir: str) -> None:
    """One DAG run; the partition's date, when given, is also its logical date."""
    day = values.get(pipeline.partition) if pipeline.partition else None
    dag = _prepare(pipeline)
    _test(dag, pipeline, values, {"output_dir": output_dir}, day)


def run_backfill(pipeline: Pipeline, values: Mapping[str, object], dates: Sequence[dt.date],
                 output_dir: str) -> None:  # fmt: skip
    """One DAG run per date; the shared steps' handles of the first run serve the later ones."""
    dag, shared, reuse = _prepare(pipeline), None, {}
    for day in dates:
        conf = {"output_dir": layout.for_date(output_dir, day), "reuse": reuse}
        run = _test(dag, pipeline, {**values, pipeline.partition: day}, conf, day)
        if shared is None:  # the handles the shared steps left in Airflow's XCom
            from airflow.models.xcom import XComModel
            from airflow.utils.session import create_session

            shared = [n for n in pipeline.order if not pipeline.depends_on_partition(n)]
            query = XComModel.get_many(
                run_id=run.run_id, key="return_value", dag_ids=dag.dag_id, task_ids=shared
            )
            with create_session() as session:
                reuse = {row.task_id: XComModel.deserialize_value(row)
                         for row in session.scalars(query)}  # fmt: skip


def _prepare(pipeline: Pipeline) -> "DAG":
    """Migrate Airflow's DB once, and point the DAG folder's file at this pipeline."""
    os.environ[PIPELINE_VARIABLE] = reference_of(pipeline)
    stamp = HOME / f".migrated-{_version()}"
    with dag_state.file_lock(HOME / "migrate.lock"):
        if not stamp.exists():
            done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"],
                                  capture_output=True, text=True, check=False)  # fmt: skip
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise PipelineError(f"airflow db migrate failed in {HOME}: {last}")
            dag_state.register_bundles()
            stamp.touch()
    liveness.close_dead(RUNNING, dag_state.close_runs_of_driver)  # what killed runs left
    return build_dag(pipeline)


def _first_run_of(dag_id: str):
    """A lock for the runs of a DAG that is not in the database yet: dag.test() writes a new
    DAG's rows, and two first runs at once would each insert them (an IntegrityError for one);
    once it is there, runs go side by side."""
    from airflow.models.dag_version import DagVersion

    if DagVersion.get_version(dag_id) is not None:
        return nullcontext()
    return dag_state.file_lock(HOME / "locks" / f"{dag_id}-first-run.lock")


def _test(dag: "DAG", pipeline: Pipeline, values: Mapping[str, object], conf: dict,
          day: dt.date | None) -> object:  # fmt: skip
    """dag.test() with the run's values as params; a failure ends in its step's one line.

    dag.test() replaces any earlier run of the same logical date: runs of one date (this
    adapter's, in other processes) take turns under a lock instead of deleting each other's."""
    logical = dt.datetime.combine(day, dt.time(), dt.UTC) if day else None
    staging = run_folder(f"airflow-{pipeline.name}")
    driver = os.path.basename(staging)  # unique to this run: its liveness key
    conf = {**to_json(values), **conf, "staging_dir": staging, dag_state.DRIVER_KEY: driver}
    log = HOME / "logs" / "adapter" / f"{os.path.basename(staging)}.log"
    failures.clear()
    turn = HOME / "locks" / f"{dag.dag_id}-{day}.lock"
    try:
        with (_first_run_of(dag.dag_id), dag_state.file_lock(turn) if day else nullcontext(),
              console.output_to(log), liveness.held(RUNNING, driver)):  # fmt: skip
            run = dag.test(run_conf=conf, **({"logical_date": logical} if logical else {}))
    except Exception as exc:
        message = " ".join(str(exc).split())
        raise PipelineError(
            f"airflow dag.test of {dag.dag_id} failed: {message} (log: {log})"
        ) from None
    print(f"airflow: {dag.dag_id}: dag run {run.run_id}: {run.state} (log: {log})", flush=True)
    if run.state == "success":
        return run
    from airflow.sdk.exceptions import AirflowFailException

    order = [*pipeline.order, "publish"]
    for task_id, error in sorted(failures, key=lambda failure: order.index(failure[0])):
        raise step_failure(task_id, error.__cause__ if isinstance(
            error, AirflowFailException) else error)  # fmt: skip
    raise PipelineError(f"airflow dag run {run.run_id} of {dag.dag_id} ended {run.state}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    sys.exit(run_command("python airflow/adapter.py", __doc__, run_one, run_backfill))
