"""What adapter.py changes in its Airflow's metadata database beside its dag.test() runs, and
the lock that keeps its one-off setup steps from racing each other (contract §9).

A run's conf names its driver (DRIVER_KEY), the process whose liveness lock (parity.liveness)
says whether anyone still waits for it: the runs of a killed driver are failed here with
Airflow's own call, so its UI never shows them running for ever.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DRIVER_KEY = "parity_driver"  # in a run's conf: the liveness key of the process driving it


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


def close_runs_of_driver(driver: str) -> None:
    """Fail the running or queued runs whose conf names `driver`, a killed driver's key
    (parity.liveness): dag.test() runs of a declared pipeline's DAG."""
    from airflow.api.common.mark_tasks import set_dag_run_state_to_failed
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    with create_session() as session:
        open_runs = session.query(DagRun).filter(
            DagRun.state.in_([DagRunState.RUNNING, DagRunState.QUEUED])
        )
        for run in [run for run in open_runs if (run.conf or {}).get(DRIVER_KEY) == driver]:
            dag = SerializedDagModel.get_dag(run.dag_id, session=session)
            print(f"airflow: marking dag run {run.run_id} of a killed run failed")
            set_dag_run_state_to_failed(dag=dag, run_id=run.run_id, commit=True, session=session)
