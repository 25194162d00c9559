"""The code location `pipelines` of the deployed Dagster: per pipeline registered with the
stack (stack/pipelines.py), a repository named by it holding its job and its assets, built
by dagster/adapter.py from its declaration (the same ops, resources and in-process executor
as `dagster dev -f dagster/adapter.py` loads).

Served by `dagster code-server start` (dagster/deployed/supervisord.conf), which, unlike
`dagster api grpc`, loads its definitions again when the location is reloaded
(`reloadRepositoryLocation`): dagster/run_pipeline_deployed.py registers a pipeline, reloads
this location and launches the job. `make up` registers the events pipeline (the default)
before this server starts, so the location holds it from the start. A pipeline that fails to
build is left out here, the others kept: a pipeline of yours never takes the events
pipeline's job down with it.
"""

import sys
from pathlib import Path

# adapter.py, dagster_env.py and the modules beside them; stack/, from the checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parent.parent))

import dagster_env  # isort: split

from adapter import build_definitions

import dagster as dg
from parity.errors import PipelineError
from stack.pipelines import registered

LOCATION = "pipelines"


def repository(pipeline) -> dg.RepositoryDefinition:
    """A repository of its own, named by the pipeline: two pipelines may name a step alike,
    and the op names of one repository must be unique."""
    defs = build_definitions(pipeline)
    held = [*defs.assets, *defs.jobs]
    return dg.repository(name=pipeline.name, default_executor_def=defs.executor,
                         default_logger_defs=defs.loggers)(lambda: held)  # fmt: skip


_built = 0
for _name, _pipeline in registered().items():
    try:  # one that fails to build is left out, not the whole location with it
        globals()[f"{_name}_repository"] = repository(_pipeline)
        _built += 1
    except (PipelineError, dg.DagsterError) as _exc:
        print(f"stack pipelines: {_name}: left out of Dagster: {_exc}", file=sys.stderr)
if not _built:  # a location must hold something: none registered (or built) yet
    defs = dg.Definitions()
