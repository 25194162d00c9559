"""A declared pipeline run on the deployed stack's Prefect (MODE=deployed).

    python prefect/run_pipeline_deployed.py run PIPELINE [--params JSON] [--date D] --output-dir DIR
    python prefect/run_pipeline_deployed.py backfill PIPELINE [--params JSON] --start D1 --end D2 \
        --output-dir DIR
    python prefect/run_pipeline_deployed.py --input-path IN --output-path OUT [--date D]
    python prefect/run_pipeline_deployed.py --input-path IN --start D1 --end D2 --output-dir DIR

The last two are the events pipeline's own flags (parity/cli.py). The flags, outputs and exit
statuses of prefect/adapter.py, but nothing runs here: the pipeline is registered with the
stack (stack/pipelines.py), its two flows are (re)deployed to the stack's work pool `events`
as `<name>/deployed` and `<name>-backfill/deployed` (entrypoint prefect/deployed_pipelines.py,
the checkout as working directory; `make up` deploys the events pipeline's the same way, from
prefect/prefect.yaml), and a run of one of them with the bound parameters is submitted and
followed (prefect/deployment_runs.py). A backfill is the adapter's backfill flow: one flow
run, the dates mapped in it. PARITY_FAIL_STEP and PARITY_FAIL_ATTEMPTS travel with the run.
"""

import contextlib
import io
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

# The stack's server, with its auth string (prefect_env.py), before Prefect is imported.
from prefect_env import PROJECT, STACK  # isort: split

from deployed_pipelines import entrypoint
from deployment_runs import submit_and_follow

from parity.binding import to_json
from parity.cli import run_command
from parity.declaration import Pipeline
from parity.faults import FAIL_ATTEMPTS, FAIL_STEP
from prefect import flow
from stack.pipelines import register

POOL = "events"  # prefect/deployed/stack.toml
DEPLOYMENT = "deployed"
PASSED = (FAIL_STEP, FAIL_ATTEMPTS)


def deploy(pipeline: Pipeline, kind: str) -> str:
    """(Re)deploy the pipeline's `kind` of flow from the checkout; its full deployment name."""
    register(pipeline)
    source = flow.from_source(source=str(PROJECT), entrypoint=entrypoint(kind, pipeline.name))
    with contextlib.redirect_stdout(io.StringIO()):  # Prefect's table of what it applied
        source.deploy(name=DEPLOYMENT, work_pool_name=POOL, build=False, push=False,
                      print_next_steps=False, ignore_warnings=True)  # fmt: skip
    return f"{source.name}/{DEPLOYMENT}"


def run_one(pipeline: Pipeline, values: Mapping, output_dir: str) -> None:
    deployment = deploy(pipeline, "run")
    parameters = {**to_json(values), "output_dir": output_dir}
    submit_and_follow(deployment, parameters, PASSED, STACK["PREFECT_PORT"])


def run_backfill(pipeline: Pipeline, values: Mapping, dates: Sequence[date],
                 output_dir: str) -> None:  # fmt: skip
    deployment = deploy(pipeline, "backfill")
    undated = {n: v for n, v in to_json(values).items() if n != pipeline.partition}
    parameters = {**undated, "start": dates[0].isoformat(), "end": dates[-1].isoformat(),
                  "output_dir": output_dir}  # fmt: skip
    submit_and_follow(deployment, parameters, PASSED, STACK["PREFECT_PORT"])


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(run_command("python prefect/run_pipeline_deployed.py", __doc__, run_one, run_backfill))
