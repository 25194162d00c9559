"""Any declared pipeline (parity.Pipeline) as a native Airflow 3 DAG: one TaskFlow task per
step (dependencies as edges, the step's retries as Airflow's), a last task `publish`, and the
run parameters as typed DAG `params`, so Airflow's UI shows the steps, the params and the
retries. Built by the DAG files (airflow/pipeline_dags/ for local mode, the deployed stack's
airflow/deployed/pipeline_dags/) and run by airflow/adapter.py or the stack's workers.

Why a module of its own: it imports no Airflow until a DAG is built and sets no Airflow
settings, so the deployed submitter (run_pipeline_deployed.py) shares its conf keys by import,
and every process that builds a DAG (a command, Airflow's DAG parser, a worker) records its
tasks' failures in this one module's `failures`.
"""

import datetime as dt
import os
import shutil
from typing import TYPE_CHECKING

from parity import console
from parity.binding import from_json, to_json
from parity.declaration import Parameter, Pipeline
from parity.errors import DeclarationError, PipelineError, is_retryable, to_wire
from parity.execution import publish_run, run_step, step_failure
from parity.faults import attempt_in_run
from parity.staging import is_held

if TYPE_CHECKING:
    from airflow.sdk import DAG

PIPELINE_VARIABLE = "PARITY_PIPELINE"
# What a run's conf may set for its tasks under "env" (deployed mode: they run in workers).
RUN_ENVIRONMENT = ("PARITY_FAIL_STEP", "PARITY_FAIL_ATTEMPTS")
STAGING_AREA = "staging_area"  # the conf's key for the area a deployed run stages in
ERROR_KEY = "error"  # the XCom a failing task leaves its error under (parity.errors.to_wire)
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
            context["ti"].xcom_push(ERROR_KEY, to_wire(error))
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
            wrapper = {"name": "airflow", "version": airflow_version(), "dag_id": run.dag_id,
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


def airflow_version() -> str:
    from airflow import __version__

    return __version__
