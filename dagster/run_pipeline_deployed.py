"""A declared pipeline run on the deployed stack's Dagster (MODE=deployed).

    python dagster/run_pipeline_deployed.py run PIPELINE [--params JSON] [--date D] --output-dir DIR
    python dagster/run_pipeline_deployed.py backfill PIPELINE [--params JSON] --start D1 --end D2 \
        --output-dir DIR
    python dagster/run_pipeline_deployed.py --input-path IN --output-path OUT [--date D]
    python dagster/run_pipeline_deployed.py --input-path IN --start D1 --end D2 --output-dir DIR

The flags, outputs and exit statuses of dagster/adapter.py (the last two: the events pipeline,
the default, in its own flags), but nothing runs here: the pipeline is registered with the
stack (stack/pipelines.py; `make up` registers the events pipeline), the code location
`pipelines` (dagster/deployed_pipelines.py) is reloaded through the webserver's GraphQL API
(`reloadRepositoryLocation`) until its repository `<name>` holds the job `<name>_job`, and
the job is launched and followed (graphql_runs.py). A DATE is the run's partition (the
`dagster/partition` tag). A backfill launches one run per date, each its partition with its
own output folder, side by side through the queue; each run runs every step (a launched run
cannot take the date-independent steps' results from another run, as the local adapter's
in-process runs do), which gives the same bytes. Paths are absolute (parity/cli.py), so they
mean the same in the run's process. PARITY_FAIL_STEP and PARITY_FAIL_ATTEMPTS (the events
pipeline's ETL_FAIL_ATTEMPTS) travel as the run's tags `etl/<NAME>`, which the run sets in
its own process (run_resources.run_variables).
"""

import fcntl
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the modules beside this file
from graphql_runs import follow, graphql, launch  # isort: split

from console_log import run_config
from run_resources import RUN_VARIABLE_TAG, RUN_VARIABLES

from parity.binding import to_json
from parity.cli import run_command
from parity.declaration import Pipeline
from parity.errors import PipelineError
from parity.layout import for_date
from stack.pipelines import register

LOCATION = "pipelines"  # dagster/deployed/workspace.yaml
RELOAD_SECONDS = 120
RELOAD = """
mutation Reload($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename
    ... on WorkspaceLocationEntry {
      locationOrLoadError {
        __typename
        ... on RepositoryLocation { repositories { name jobs { name } } }
        ... on PythonError { message }
      }
    }
    ... on Error { message }
  }
}"""
REPOSITORY = """
query Repository($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) {
    __typename
    ... on Repository { jobs { name } }
  }
}"""


def reload_with(pipeline: Pipeline, registered: Path) -> None:
    """Have the code location hold the pipeline's current job: reloaded when its repository
    lacks the job, or the pipeline was registered or its file changed since the last reload.
    The commands of this project take turns (an flock): reloads at once would restart the
    code server under each other's feet; a run under way survives one (its process is the
    old server's, which ends when its runs have)."""
    job, stamp = f"{pipeline.name}_job", registered.with_suffix(".reloaded")
    with open(registered.with_name(".dagster-reload.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        source = json.loads(registered.read_text(encoding="utf-8"))["pipeline"]
        changed = max(os.path.getmtime(path) for path in (registered, source)
                      if os.path.isfile(path))  # fmt: skip
        current = stamp.exists() and stamp.stat().st_mtime >= changed
        if current and job in _jobs(graphql(REPOSITORY, {"selector": {
                "repositoryLocationName": LOCATION, "repositoryName": pipeline.name}})):
            return  # fmt: skip
        deadline = time.monotonic() + RELOAD_SECONDS
        while True:
            try:
                entry = graphql(RELOAD, {"name": LOCATION})["reloadRepositoryLocation"]
            except PipelineError:  # the webserver between two states of the location
                entry = {"__typename": "retry"}
            location = entry.get("locationOrLoadError") or {}
            if location.get("__typename") == "PythonError":
                first = location["message"].strip().splitlines()[0]
                raise PipelineError(f"dagster: code location {LOCATION!r} failed to load: {first}")
            repositories = location.get("repositories", [])
            if job in {job["name"] for repo in repositories if repo["name"] == pipeline.name
                       for job in repo["jobs"]}:  # fmt: skip
                stamp.touch()
                return
            if time.monotonic() > deadline:
                raise PipelineError(f"dagster: code location {LOCATION!r} has no job {job} after "
                                    f"{RELOAD_SECONDS} s of reloads: {entry}")  # fmt: skip
            time.sleep(1)


def _jobs(answer: dict) -> set[str]:
    repository = answer["repositoryOrError"]
    return {job["name"] for job in repository.get("jobs", [])}


def launch_job(pipeline: Pipeline, values: Mapping, output_dir: str, day: date | None) -> str:
    """Launch the pipeline's job with these values (the date `day` its partition); its run id."""
    job = f"{pipeline.name}_job"
    tags = [{"key": "dagster/partition", "value": day.isoformat()}] if day else []
    tags += [{"key": RUN_VARIABLE_TAG.format(name), "value": os.environ[name]}
             for name in RUN_VARIABLES if os.environ.get(name)]  # fmt: skip
    config = {**run_config({"publish": {"config": {"output_dir": output_dir}}}),
              "resources": {"params": {"config": to_json(values)}}}  # fmt: skip
    params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": pipeline.name,
                     "jobName": job},
        "runConfigData": config,
        "executionMetadata": {"tags": tags},
    }  # fmt: skip
    return launch(params, f"{job}{f' {day}' if day else ''}")


def run_one(pipeline: Pipeline, values: Mapping, output_dir: str) -> None:
    reload_with(pipeline, register(pipeline))
    day = values.get(pipeline.partition) if pipeline.partition else None
    follow([launch_job(pipeline, values, output_dir, day)])


def run_backfill(pipeline: Pipeline, values: Mapping, dates: Sequence[date],
                 output_dir: str) -> None:  # fmt: skip
    reload_with(pipeline, register(pipeline))
    follow([launch_job(pipeline, {**values, pipeline.partition: day},
                       for_date(output_dir, day), day) for day in dates])  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_command("python dagster/run_pipeline_deployed.py", __doc__, run_one, run_backfill))
