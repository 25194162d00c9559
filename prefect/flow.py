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

import fcntl
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from unittest import mock

# Prefect reads its settings when it is imported: prefect_env.py sets them, so it comes first.
import prefect_env  # isort: split

from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.logging import get_run_logger
from prefect.runtime import flow_run, task_run
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_HOME,
    PREFECT_SERVER_EPHEMERAL_ENABLED,
)
from prefect.states import Crashed
from prefect.task_runners import ThreadPoolTaskRunner

import prefect
import shared_etl
from parity import console, processes
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
    retry always finds it), with the run's lock held meanwhile (_held_while_running)."""
    with _held_while_running(flow_run.id):
        staging = shared_etl.new_staging_dir(f"prefect-{flow_run.id}")
        try:
            yield staging
        finally:
            shared_etl.discard_staging(staging)


def _running_folder() -> Path:
    return Path(PREFECT_HOME.value()) / "running"


@contextmanager
def _held_while_running(flow_run_id: str) -> Iterator[None]:
    """Hold a lock named by the flow run while it runs. The kernel drops it when the process
    dies, SIGKILL included, which is how a later run tells a killed run from a live one."""
    folder = _running_folder()
    folder.mkdir(parents=True, exist_ok=True)
    pending, held = folder / f"{flow_run_id}.new", folder / f"{flow_run_id}.lock"
    with open(pending, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # locked before a sweeper can see its name
        pending.rename(held)
        try:
            yield
        finally:
            held.unlink(missing_ok=True)


def mark_killed_runs_crashed() -> list[str]:
    """Set the flow runs whose process was killed (their lock is free) to Crashed: Prefect
    would show them Running for ever. Returns their ids."""
    crashed = []
    for held in _running_folder().glob("*.lock"):
        with suppress(FileNotFoundError), open(held) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live run
            if os.fstat(lock.fileno()).st_nlink == 0:
                continue  # its run ended normally while we looked (it unlinks before unlocking)
            with get_client(sync_client=True) as client, suppress(ObjectNotFound):
                state = client.read_flow_run(held.stem).state
                if state is not None and not state.is_final():
                    message = "its process was killed; found by a later run"
                    client.set_flow_run_state(held.stem, Crashed(message=message), force=True)
                    crashed.append(held.stem)
            held.unlink(missing_ok=True)
    return crashed


def start_api_server_tied_to_this_process() -> None:
    """Start Prefect's own temporary API server now, from the main thread, so that it dies
    with this process. Prefect starts it lazily as a plain child, which outlives a SIGKILL
    of its parent (an OOM kill, `kill -9`) and keeps serving with no one to stop it; Prefect
    has no setting for this, so its Popen gets a parent-death signal. Every Prefect client
    of this process then uses this server (Prefect keeps one per process). Nothing to do
    when PREFECT_API_URL names a running server (or ephemeral mode is off).

    Each server migrates the database as it starts; two at once on a new (or older) database
    collide ("duplicate column") and one dies with a traceback, so runs side by side start
    their servers one at a time, under a lock the kernel drops if its holder is killed."""
    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    tied = partial(subprocess.Popen, preexec_fn=processes.tied_to_this_process())
    with open(Path(PREFECT_HOME.value()) / "server-start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with mock.patch("prefect.server.api.server.subprocess.Popen", tied):
            SubprocessASGIServer().start()


@contextmanager
def pointing_to_full_log() -> Iterator[None]:
    """A failed flow run ends with its one-line reason; before it, where its errors are in
    full (logging.yml keeps them off the console)."""
    try:
        yield
    except Exception:
        print(console.full_log_line(Path(PREFECT_HOME.value()) / "prefect.log"), flush=True)
        raise


# From the command line, what the flows check first is checked before Prefect starts too: a
# bad output or date fails at once, not after the API server's start-up.
def _run_one(input_path: str, output_path: str, date: str | None) -> dict:
    shared_etl.check_output_path(output_path)
    shared_etl.parse_date(date)
    start_api_server_tied_to_this_process()
    mark_killed_runs_crashed()
    with pointing_to_full_log():
        return events_daily_metrics(input_path, output_path, date)


def _run_backfill(input_path: str, start: str, end: str, output_dir: str) -> list[dict]:
    shared_etl.dates_between(start, end)
    shared_etl.check_output_dir(output_dir)
    start_api_server_tied_to_this_process()
    mark_killed_runs_crashed()
    with pointing_to_full_log():
        return events_backfill(input_path, start, end, output_dir)


if __name__ == "__main__":
    sys.exit(run_command("python prefect/flow.py", __doc__, _run_one, _run_backfill))
