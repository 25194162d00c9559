"""The code location `pipelines` of the deployed Dagster: a job per pipeline registered with
the stack (stack/pipelines.py), each built by dagster/adapter.py from its declaration.

Served by `dagster code-server start` (dagster/deployed/supervisord.conf), which, unlike
`dagster api grpc`, loads its definitions again when the location is reloaded
(`reloadRepositoryLocation`): dagster/run_pipeline_deployed.py registers a pipeline, reloads
this location and launches the job. Apart from the events location, so that a pipeline of
yours that fails to load never takes the events job down with it; one that fails to load is
left out here, the others kept.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # adapter.py, dagster_env.py, definitions.py
sys.path.append(str(HERE.parent))  # stack/, from the checkout

import dagster_env  # noqa: F401  # isort: split

from adapter import build_job

import dagster as dg
from stack.pipelines import registered

LOCATION = "pipelines"
defs = dg.Definitions(jobs=[build_job(pipeline) for pipeline in registered().values()])
