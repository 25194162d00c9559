"""A declared pipeline run on the deployed stack's Airflow (MODE=deployed).

    python airflow/run_pipeline_deployed.py run PIPELINE [--params JSON] [--date D] --output-dir DIR
    python airflow/run_pipeline_deployed.py backfill PIPELINE [--params JSON] --start D1 --end D2 \
        --output-dir DIR
    python airflow/run_pipeline_deployed.py --input-path IN --output-path OUT [--date D]
    python airflow/run_pipeline_deployed.py --input-path IN --start D1 --end D2 --output-dir DIR

The flags, outputs and exit statuses of airflow/adapter.py (the last two: the events
pipeline's own, parity/cli.py), but nothing runs here: the pipeline is registered with the
stack (stack/pipelines.py; `make up` registers the events pipeline), the stack's DAG bundle
`pipelines` is parsed at once (`airflow dags reserialize`, rather than waiting for the DAG
processor's next pass), and the DAG `<name>` is triggered and followed through the REST API
(rest_api.py). The Celery workers run the tasks.

A run's conf carries its values (Airflow's params are overridden by the conf), its output
folder, and a staging folder inside the staging area this command holds (parity.cli), which
the workers write to on this machine. The area is in the conf too: each task checks that it
is still held before and after its work (airflow/pipeline_dag.py), so the run of a command that
was killed stops at its next task, in one line, instead of staging into an area that any
later command clears as dead. A backfill is one DAG run per date, all triggered at
once and run side by side, each with its date as its `date` param and no logical date (so
that running the same dates again, even from two commands at once, never collides with
other runs); each runs every step, as the adapter's DAG has no way to take another run's
results (what local mode's dag.test runs do through XCom), which gives the same bytes.
PARITY_FAIL_STEP and PARITY_FAIL_ATTEMPTS travel in the conf (`env`).
"""

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its modules, beside this file
from pipeline_dag import RUN_ENVIRONMENT, STAGING_AREA
from rest_api import AirflowApi, follow, ready_api, task_error

from parity import console, processes
from parity.binding import to_json
from parity.cli import run_command
from parity.declaration import Pipeline
from parity.errors import PipelineError
from parity.layout import for_date
from parity.staging import run_folder, staging_root
from stack import layout
from stack.pipelines import register

BUNDLE = "pipelines"  # airflow/deployed/configure.py
AIRFLOW = layout.PROJECT / ".venvs" / "airflow" / "bin" / "airflow"


def parse(pipeline: Pipeline) -> None:
    """Register the pipeline and have the stack's Airflow parse its DAG now."""
    register(pipeline)
    done = subprocess.run(
        [str(AIRFLOW), "dags", "reserialize", "--bundle-name", BUNDLE],
        env={**os.environ, "AIRFLOW_HOME": str(layout.STATE / "airflow")},
        capture_output=True, text=True, check=False,
        preexec_fn=processes.tied_to_this_process(),  # not outliving a killed command
    )  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PipelineError(f"airflow dags reserialize --bundle-name {BUNDLE} failed: {last}")


def trigger(api: AirflowApi, pipeline: Pipeline, values: Mapping, output_dir: str) -> str:
    conf = {**to_json(values), "output_dir": output_dir,
            STAGING_AREA: staging_root(),  # the area this command holds (parity.cli)
            "staging_dir": run_folder(f"airflow-{pipeline.name}"),
            "env": {n: os.environ[n] for n in RUN_ENVIRONMENT if os.environ.get(n)}}  # fmt: skip
    run = api.request("POST", f"/api/v2/dags/{api.dag_id}/dagRuns",
                      {"logical_date": None, "conf": conf})  # fmt: skip
    run_id = run["dag_run_id"]
    console.progress(f"triggered dag run {run_id} ({api.base}/dags/{api.dag_id}/runs/{run_id})")
    return run_id


def follow_to_the_end(api: AirflowApi, pipeline: Pipeline, run_ids: list[str]) -> None:
    """Follow the runs; if any failed, end with the first failed run's task error."""
    states = follow(api, run_ids)
    failed = [run_id for run_id in run_ids if states[run_id] != "success"]
    if failed:
        fallback = f"airflow dag run {failed[0]} of {api.dag_id} ended {states[failed[0]]}"
        raise task_error(api, failed, [*pipeline.order, "publish"], fallback)


def run_one(pipeline: Pipeline, values: Mapping, output_dir: str) -> None:
    parse(pipeline)
    api = ready_api(pipeline.name)
    follow_to_the_end(api, pipeline, [trigger(api, pipeline, values, output_dir)])


def run_backfill(pipeline: Pipeline, values: Mapping, dates: Sequence[date],
                 output_dir: str) -> None:  # fmt: skip
    parse(pipeline)
    api = ready_api(pipeline.name)
    run_ids = [trigger(api, pipeline, {**values, pipeline.partition: day},
                       for_date(output_dir, day)) for day in dates]  # fmt: skip
    follow_to_the_end(api, pipeline, run_ids)


if __name__ == "__main__":
    sys.exit(run_command("python airflow/run_pipeline_deployed.py", __doc__, run_one, run_backfill))
