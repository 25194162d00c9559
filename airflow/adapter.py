"""Any declared pipeline (parity.Pipeline) as a native Airflow 3 DAG (pipeline_dag.py), run in
local mode.

    python airflow/adapter.py run PIPELINE [--params JSON] [--date YYYY-MM-DD] --output-dir DIR
    python airflow/adapter.py backfill PIPELINE [--params JSON] --start D1 --end D2 --output-dir DIR

A run is `dag.test()`: a real DAG run in the metadata DB under .state/airflow-pipelines, tasks
executed in this process. It takes the events pipeline's own flags too (parity/cli.py), as
`make airflow` gives them. A backfill is one `dag.test()` per date, with that date as the
run's logical date and `date` param; the steps that do not read the date run in the first
date's run only, and the later runs' tasks of those steps hand back its handles.
Airflow finds the DAG through airflow/pipeline_dags/, which builds it from $PARITY_PIPELINE.
"""

import datetime as dt
import os
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
from pipeline_dag import PIPELINE_VARIABLE, airflow_version, build_dag, failures

from parity import console, layout, liveness
from parity.binding import to_json
from parity.cli import run_command
from parity.declaration import Pipeline
from parity.errors import PipelineError
from parity.execution import step_failure
from parity.loader import reference_of
from parity.staging import run_folder

if TYPE_CHECKING:
    from airflow.sdk import DAG

HOME = airflow_env.PIPELINES_HOME
RUNNING = HOME / "running"  # the liveness locks of the dag.test() runs in progress


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
    stamp = HOME / f".migrated-{airflow_version()}"
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
