"""The events pipeline as a Prefect 3 flow: tasks are the shared_etl steps and nothing more.

    python prefect/flow.py --input-path IN --output-path OUT [--date YYYY-MM-DD]
    python prefect/flow.py --input-path IN --start D1 --end D2 --output-dir DIR   # backfill

One run is a flow with two tasks, `prepare` then `aggregate`. A backfill is one parent flow
run that prepares once and maps `aggregate` over the dates, run concurrently by a
ThreadPoolTaskRunner. Retries are Prefect's own (`retries`, `retry_delay_seconds`, and a
`retry_condition_fn` that does not retry what cannot pass); the attempt number handed to
shared_etl is Prefect's `task_run.run_count`. Data moves between tasks as files in a
run-scoped staging folder; only a small JSON-able handle passes through Prefect.
"""

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# Prefect reads its settings when it is imported: prefect_env.py sets them, so it comes first.
import prefect_env  # isort: split

import local_runs
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.runtime import flow_run, task_run
from prefect.task_runners import ThreadPoolTaskRunner

import prefect
import shared_etl
from prefect import flow, task, unmapped
from shared_etl.cli import run_command

RETRIES = 2
RETRY_DELAY_SECONDS = 1


def _retryable(task, run, state) -> bool:
    """Retry only what may pass next time (shared_etl.is_retryable)."""
    error = state.data if isinstance(state.data, BaseException) else None
    return error is None or shared_etl.is_retryable(error)


class _PipelineErrorsAsOneLine(logging.Filter):
    """Prefect logs a failed flow or task with its traceback; a pipeline error's message
    already names the file or step and the cause, so its log record keeps that one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, shared_etl.PipelineError):
            record.exc_info, record.exc_text = None, None
        return True


for _logger in ("prefect.flow_runs", "prefect.task_runs"):
    logging.getLogger(_logger).addFilter(_PipelineErrorsAsOneLine())


_TASK_OPTIONS = {
    "retries": RETRIES,
    "retry_delay_seconds": RETRY_DELAY_SECONDS,
    "retry_condition_fn": _retryable,
    "cache_policy": NO_CACHE,
    "persist_result": False,
}


@task(name="prepare", task_run_name="prepare", **_TASK_OPTIONS)
def prepare(input_path: str, staging_dir: str) -> dict:
    prepared = shared_etl.prepare(input_path, staging_dir, attempt=task_run.run_count)
    get_run_logger().info(
        "%s records read: %s kept, %s rejected, %s duplicates",
        prepared.records_read,
        prepared.kept,
        prepared.rejected,
        prepared.duplicates,
    )
    return prepared.to_dict()


@task(name="aggregate", task_run_name="aggregate {output_path}", **_TASK_OPTIONS)
def aggregate(prepared: dict, output_path: str, date: str | None) -> dict:
    result = shared_etl.aggregate(
        shared_etl.PreparedRun.from_dict(prepared),
        output_path,
        date=date,
        attempt=task_run.run_count,
        orchestrator={
            "name": "prefect",
            "version": prefect.__version__,
            "flow_run_id": str(flow_run.id),
            "task_run_id": str(task_run.id),
        },
    )
    get_run_logger().info(
        "wrote %s: %s metric rows, %s out of window (attempt %s)",
        output_path,
        result.metric_rows,
        result.out_of_window,
        result.attempts,
    )
    return result.to_dict()


@flow(name="events-daily-metrics", flow_run_name="events-daily-metrics")
def events_daily_metrics(input_path: str, output_path: str, date: str | None = None) -> dict:
    """One run: all dates, or the one UTC `date`."""
    shared_etl.check_output_path(output_path)  # before the input is read
    shared_etl.parse_date(date)
    with _run_staging() as staging:
        return aggregate(prepare(input_path, staging), output_path, date)


@flow(
    name="events-backfill",
    flow_run_name="events-backfill {start}..{end}",
    task_runner=ThreadPoolTaskRunner(max_workers=4),
)
def events_backfill(input_path: str, start: str, end: str, output_dir: str) -> list[dict]:
    """Prepare once, then one concurrent `aggregate` per date from `start` to `end`."""
    dates = shared_etl.dates_between(start, end)
    shared_etl.check_output_dir(output_dir)  # before the input is read
    with _run_staging() as staging:
        prepared = prepare(input_path, staging)
        outputs = [os.path.join(output_dir, f"{day}.parquet") for day in dates]
        aggregates = aggregate.map(unmapped(prepared), outputs, dates)
        # Every date settles (retries included) before the staging they read is removed.
        aggregates.wait()
        return aggregates.result()


@contextmanager
def _run_staging() -> Iterator[str]:
    """The flow run's staging folder, removed by the flow when it ends (never by a task, so a
    retry always finds it), with the run's liveness lock held meanwhile (local_runs)."""
    with local_runs.held_while_running(flow_run.id):
        staging = shared_etl.new_staging_dir(f"prefect-{flow_run.id}")
        try:
            yield staging
        finally:
            shared_etl.discard_staging(staging)


# From the command line, what the flows check first is checked before Prefect starts too: a
# bad output or date fails at once, not after the API server's start-up.
def _run_one(input_path: str, output_path: str, date: str | None) -> dict:
    shared_etl.check_output_path(output_path)
    shared_etl.parse_date(date)
    local_runs.started()
    with local_runs.pointing_to_full_log():
        return events_daily_metrics(input_path, output_path, date)


def _run_backfill(input_path: str, start: str, end: str, output_dir: str) -> list[dict]:
    shared_etl.dates_between(start, end)
    shared_etl.check_output_dir(output_dir)
    local_runs.started()
    with local_runs.pointing_to_full_log():
        return events_backfill(input_path, start, end, output_dir)


if __name__ == "__main__":
    sys.exit(run_command("python prefect/flow.py", __doc__, _run_one, _run_backfill))
