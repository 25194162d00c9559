"""What run.py reads and changes in Airflow's metadata database, and the locks that keep
runs of the DAG side by side from changing each other's state (contract §9).

The DAG lock (an flock on `<AIRFLOW_HOME>/<dag_id>.lock`): a backfill holds it exclusively,
a `dag.test()` run shared. A backfill must unpause the DAG for the scheduler, and an
unpaused DAG's RUNNING runs are all the scheduler's to execute, a `dag.test()` run's
included, so the two never run at once; two `dag.test()` runs may. Whoever holds the lock
exclusively knows that no live driver has a run in progress: every open backfill and every
running run of the DAG is a dead driver's, and is closed with Airflow's own calls.
"""

import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from parity import console
from parity.errors import PipelineError

LOCK_WAIT_SECONDS = 900
ERROR_KEY = "error"  # the XCom a failing task leaves its one-line error under
DRIVER_KEY = "parity_driver"  # in a run's conf: the liveness key of the process driving it


@contextmanager
def dag_lock(home: Path, dag_id: str, *, exclusive: bool, holder: str) -> Iterator[bool]:
    """Hold the DAG lock; yield whether it is held exclusively (stale runs may be closed).

    A shared holder that finds the lock free takes it exclusively first, closes what dead
    runs left behind, then shares it. Waiting prints one line and is bounded.
    """
    home.mkdir(parents=True, exist_ok=True)
    path = home / f"{dag_id}.lock"
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not exclusive and _try(handle, fcntl.LOCK_EX):
            close_dead_runs(dag_id)
            _wait(handle, fcntl.LOCK_SH, path, holder)  # not atomic: a backfill may come first
        else:
            _wait(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, path, holder)
            if exclusive:
                close_dead_runs(dag_id)
        yield exclusive
    finally:
        os.close(handle)


def _try(handle: int, mode: int) -> bool:
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait(handle: int, mode: int, path: Path, holder: str) -> None:
    if _try(handle, mode):
        return
    other = "runs" if mode == fcntl.LOCK_EX else "backfill"
    print(f"{holder}: waiting for the {other} of the DAG in progress to end (lock {path}, "
          f"at most {LOCK_WAIT_SECONDS} s)", file=sys.stderr, flush=True)  # fmt: skip
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if _try(handle, mode):
            print(f"{holder}: lock {path} acquired", file=sys.stderr, flush=True)
            return
    raise PipelineError(
        f"{path}: another run of the DAG still holds it after {LOCK_WAIT_SECONDS} s"
    )


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock held for the block (waits; used for one-off setup steps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def register_bundles() -> None:
    """Write the DAG bundles' rows now, under the caller's migration lock. Every dag.test()
    writes them too, but on a new database runs side by side would each insert them, and all
    but one fail (UNIQUE constraint failed: dag_bundle.name)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()


def close_dead_runs(dag_id: str) -> None:
    """Cancel the DAG's open backfills and fail its running or queued runs: called only with
    the DAG lock held exclusively, when they can only be those of killed drivers. Left
    RUNNING, the scheduler of the next backfill would finish a killed run's work."""
    from airflow.api_fastapi.core_api.routes.public.backfills import cancel_backfill
    from airflow.models.backfill import Backfill
    from airflow.utils.session import create_session

    with create_session() as session:
        for backfill in session.query(Backfill).filter(
            Backfill.dag_id == dag_id, Backfill.completed_at.is_(None)
        ):
            print(f"airflow: cancelling backfill {backfill.id} of a killed run")
            cancel_backfill(backfill_id=backfill.id, session=session)
        session.commit()
        _fail_open_runs(session, lambda run: run.dag_id == dag_id)


def close_runs_of_driver(driver: str) -> None:
    """Fail the running or queued runs whose conf names `driver`, a killed driver's key
    (parity.liveness): dag.test() runs of a declared pipeline's DAG."""
    from airflow.utils.session import create_session

    with create_session() as session:
        _fail_open_runs(session, lambda run: (run.conf or {}).get(DRIVER_KEY) == driver)


def _fail_open_runs(session, chosen) -> None:
    from airflow.api.common.mark_tasks import set_dag_run_state_to_failed
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.state import DagRunState

    open_runs = session.query(DagRun).filter(
        DagRun.state.in_([DagRunState.RUNNING, DagRunState.QUEUED])
    )
    for run in [run for run in open_runs if chosen(run)]:
        dag = SerializedDagModel.get_dag(run.dag_id, session=session)
        print(f"airflow: marking dag run {run.run_id} of a killed run failed")
        set_dag_run_state_to_failed(dag=dag, run_id=run.run_id, commit=True, session=session)


def newest_backfill_id(dag_id: str) -> int:
    """The id of the DAG's newest backfill (0 if none)."""
    from airflow.models.backfill import Backfill
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(select(func.max(Backfill.id)).where(Backfill.dag_id == dag_id)) or 0


def backfill_progress(backfill_id: int) -> tuple[bool, dict[str, str]]:
    """Whether backfill `backfill_id` is closed, and the state of each of its runs by date."""
    from airflow.models.backfill import Backfill
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        backfill = session.get(Backfill, backfill_id)
        runs = session.query(DagRun).filter(DagRun.backfill_id == backfill_id).all()
        states = {run.logical_date.date().isoformat(): str(run.state) for run in runs}
        return backfill is not None and backfill.completed_at is not None, states


def task_logs(logs: Path, dag_id: str) -> set[Path]:
    """The DAG's task log files: one per attempt of each task of each run."""
    return set((logs / f"dag_id={dag_id}").glob("run_id=*/task_id=*/attempt=*.log"))


def retry_lines(logs: Path, backfill_id: int, older: set[Path]) -> list[tuple[str, str]]:
    """(date, line) for each retry line (the DAG's on_retry_callback's, logged by
    parity.console) in the task logs of the backfill's runs, oldest first, leaving out the
    `older` logs: a backfill that reprocesses a date reuses its run, earlier attempts' logs
    included. A backfill's tasks run in the scheduler's processes, whose output goes only to
    those logs."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.backfill_id == backfill_id).all()
        days = {(run.dag_id, run.run_id): run.logical_date.date().isoformat() for run in runs}
    found = []
    for (dag_id, run_id), day in days.items():
        run_logs = logs / f"dag_id={dag_id}" / f"run_id={run_id}"
        for path in sorted(set(run_logs.glob("task_id=*/attempt=*.log")) - older):
            for text in path.read_text(errors="replace").splitlines():
                if f'"{console.CONSOLE_LOGGER}"' in text:
                    entry = json.loads(text)
                    found.append((entry.get("timestamp", ""), day, entry["event"]))
    return [(day, line) for _, day, line in sorted(found)]


def run_errors(dag_id: str, run_ids: list[str]) -> list[tuple[str, dict]]:
    """The one-line errors failed tasks left in XCom: (run_id, {"message", "exit_code"})."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    errors = []
    with create_session() as session:
        for run_id in run_ids:
            query = XComModel.get_many(run_id=run_id, key=ERROR_KEY, dag_ids=dag_id)
            for row in session.scalars(query):
                value = XComModel.deserialize_value(row)
                if isinstance(value, dict) and "message" in value:
                    errors.append((run_id, value))
    return errors
