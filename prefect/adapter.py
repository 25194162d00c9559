"""Any declared pipeline (parity.Pipeline) as native Prefect 3 definitions, run in local mode.

    python prefect/adapter.py run PIPELINE [--params JSON] [--date YYYY-MM-DD] --output-dir DIR
    python prefect/adapter.py backfill PIPELINE [--params JSON] --start D1 --end D2 --output-dir DIR

`build` makes one Prefect task per step (named by the step, its dependencies as edges), a last
task `publish`, and two flows. The run's flow has the pipeline's parameters as its own typed
parameters, so Prefect's form shows their types and defaults. The backfill is one parent flow
run: the steps no date changes run once, the others and `publish` are mapped over the dates
on a ThreadPoolTaskRunner. Retries are Prefect's, never of what parity.is_retryable refuses;
a step's attempt is Prefect's run_count. Results stay in the run's staging folder: only their
small handles pass through Prefect. State lives under .state/prefect, never in $HOME.
"""

import datetime as dt
import inspect
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence

# Prefect reads its settings when it is imported: prefect_env.py sets them, so it comes first.
import prefect_env  # isort: split

import local_runs
from prefect.cache_policies import NO_CACHE
from prefect.flows import Flow
from prefect.runtime import flow_run, task_run
from prefect.task_runners import ThreadPoolTaskRunner

import prefect
from parity import DeclarationError, Pipeline, PipelineError, is_retryable, layout
from parity.binding import from_json, to_json
from parity.cli import run_command
from parity.execution import publish_run, run_step, step_failure
from parity.staging import run_folder
from prefect import flow, task


def _retryable(task, run, state) -> bool:
    """Retry only what may pass next time: a bad input or result fails the same way again."""
    error = state.data if isinstance(state.data, BaseException) else None
    return error is None or is_retryable(error)


class _OneLinePerFailure(logging.Filter):
    """A pipeline error's message already names the step and the cause: no traceback. A step
    that never ran because one before it failed (Prefect's NotReady) adds nothing to it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], PipelineError):
            record.exc_info, record.exc_text = None, None
        return not record.getMessage().startswith("Finished in state NotReady")


for _logger in ("prefect.flow_runs", "prefect.task_runs"):
    logging.getLogger(_logger).addFilter(_OneLinePerFailure())

_OPTIONS = {"retry_condition_fn": _retryable, "cache_policy": NO_CACHE, "persist_result": False}


def build(pipeline: Pipeline) -> tuple[Flow, Flow]:
    """(the run's flow, the backfill's flow): made per pipeline, since the tasks, their retry
    policies and the flows' typed parameters all come from its declaration."""
    if "output_dir" in pipeline.parameters:  # parity does not reserve the name (yet)
        raise DeclarationError("parameter 'output_dir': the name is reserved by the adapters")
    tasks = {name: _step_task(pipeline, name) for name in pipeline.order}

    @task(name="publish", task_run_name="publish {output_dir}", retries=1, **_OPTIONS)
    def publish(values: dict, handles: dict, output_dir: str) -> dict:
        run = {"flow_run_id": str(flow_run.id)}
        wrapper = {"name": "prefect", "version": prefect.__version__, **run}
        return publish_run(pipeline, from_json(pipeline, values), handles, output_dir, wrapper)

    def submit(names: Sequence[str], values: dict, staging: str) -> dict:
        futures: dict = {}
        for name in names:
            inputs = {dep: futures[dep] for dep in pipeline.dependencies[name]}
            futures[name] = tasks[name].submit(values, inputs, staging)
        return futures

    def one(output_dir: str, **parameters: object) -> dict:
        values = to_json(parameters)
        with local_runs.held_while_running(flow_run.id):
            futures = submit(pipeline.order, values, run_folder(f"prefect-{flow_run.id}"))
            _settled(pipeline.order, futures)
            return _result("publish", publish.submit(values, futures, output_dir))

    def backfill(start: dt.date, end: dt.date, output_dir: str, **parameters: object) -> list:
        with local_runs.held_while_running(flow_run.id):
            return each_date(start, end, output_dir, **parameters)

    def each_date(start: dt.date, end: dt.date, output_dir: str, **parameters: object) -> list:
        days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
        staging = run_folder(f"prefect-{flow_run.id}")
        shared = [name for name in pipeline.order if not pipeline.depends_on_partition(name)]
        common = submit(shared, to_json(parameters), staging)
        _settled(shared, common)
        values = [to_json({**parameters, pipeline.partition: day}) for day in days]
        stagings = [os.path.join(staging, day.isoformat()) for day in days]
        dated = [name for name in pipeline.order if name not in common]
        futures = [dict(common) for _ in days]  # per date: a future by step
        for name in dated:
            inputs = [{dep: date[dep] for dep in pipeline.dependencies[name]} for date in futures]
            mapped = tasks[name].map(values, inputs, stagings)
            for date, future in zip(futures, mapped, strict=True):
                date[name] = future
        for date in futures:
            _settled(dated, date)
        folders = [layout.for_date(output_dir, day) for day in days]
        published = publish.map(values, futures, folders)
        return [_result("publish", future) for future in published]

    output_dir = [inspect.Parameter("output_dir", inspect.Parameter.KEYWORD_ONLY, annotation=str)]
    dates = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=dt.date)
             for n in ("start", "end")]  # fmt: skip
    undated = {n: p for n, p in pipeline.parameters.items() if n != pipeline.partition}
    return (
        flow(_typed(one, pipeline.parameters, output_dir), name=pipeline.name,
             flow_run_name=pipeline.name, persist_result=False),
        flow(_typed(backfill, undated, dates + output_dir), name=f"{pipeline.name}-backfill",
             flow_run_name=f"{pipeline.name}-backfill {{start}}..{{end}}", persist_result=False,
             task_runner=ThreadPoolTaskRunner(max_workers=4)),
    )  # fmt: skip


def _step_task(pipeline: Pipeline, name: str) -> prefect.Task:
    declared = pipeline.steps[name]

    def body(values: dict, inputs: dict, staging_dir: str) -> dict:
        return run_step(pipeline, name, from_json(pipeline, values), inputs, staging_dir,
                        attempt=task_run.run_count)  # fmt: skip

    def run_name() -> str:  # a date's task runs carry their date
        day = task_run.parameters.get("values", {}).get(pipeline.partition)
        return f"{name} {day}" if day else name

    body.__name__ = body.__qualname__ = name
    return task(body, name=name, task_run_name=run_name, retries=declared.retries,
                retry_delay_seconds=declared.retry_delay_seconds, **_OPTIONS)  # fmt: skip


def _typed(body: Callable, parameters: Mapping, extra: list[inspect.Parameter]) -> Callable:
    """`body` with the run parameters as typed keyword parameters in its signature: what
    Prefect reads for the flow's parameter schema and to validate a run's values."""
    declared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=p.default,
                          annotation=p.type | None if p.optional else p.type)
        for name, p in parameters.items()
    ]  # fmt: skip
    signature = sorted(declared + extra, key=lambda p: p.default is not p.empty)  # required first
    body.__signature__ = inspect.Signature(signature)
    body.__annotations__ = {p.name: p.annotation for p in signature}
    return body


def _settled(names: Sequence[str], futures: Mapping) -> None:
    """Wait for the steps. The first (in order) that failed for good ends the flow run with its
    one-line error; the steps after it failed only by waiting for it."""
    for name in names:
        _result(name, futures[name])


def _result(name: str, future: prefect.futures.PrefectFuture) -> dict:
    try:
        return future.result()
    except Exception as exc:
        raise step_failure(name, exc) from None


def run_one(pipeline: Pipeline, values: Mapping, output_dir: str) -> dict:
    one, _ = build(pipeline)
    local_runs.started()
    with local_runs.pointing_to_full_log():
        return one(**to_json(values), output_dir=output_dir)


def run_backfill(
    pipeline: Pipeline, values: Mapping, dates: Sequence[dt.date], output_dir: str
) -> list:
    _, backfill = build(pipeline)
    local_runs.started()
    undated = {n: v for n, v in to_json(values).items() if n != pipeline.partition}
    start, end = dates[0].isoformat(), dates[-1].isoformat()
    with local_runs.pointing_to_full_log():
        return backfill(**undated, start=start, end=end, output_dir=output_dir)


if __name__ == "__main__":
    sys.exit(run_command("python prefect/adapter.py", __doc__, run_one, run_backfill))
