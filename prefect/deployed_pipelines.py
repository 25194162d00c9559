"""The flows of the pipelines registered with the deployed stack (stack/pipelines.py), as the
entrypoint of their deployments: `prefect/deployed_pipelines.py:run_<name>` (one run) and
`…:backfill_<name>` (a backfill), both built by prefect/adapter.py from the declaration.

prefect/run_pipeline_deployed.py deploys them, and a worker's flow-run process loads them here
by attribute, so a pipeline is found by its name in the registry when the run starts, not
fixed in a deployment file: each pipeline's deployments are its own (two run side by side).
"""

import sys
from pathlib import Path

# adapter.py and prefect_env.py, however this file is loaded; stack/, from the checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parent.parent))

import prefect_env  # isort: split

from adapter import build
from prefect.flows import Flow

from stack.pipelines import find

HERE = Path(__file__).resolve().parent

KINDS = ("run", "backfill")


def entrypoint(kind: str, name: str) -> str:
    """The deployment's entrypoint of pipeline `name`'s `kind` of flow."""
    return f"{Path(__file__).relative_to(HERE.parent)}:{kind}_{name}"


def __getattr__(attribute: str) -> Flow:
    kind, _, name = attribute.partition("_")
    if kind not in KINDS or not name:
        raise AttributeError(attribute)
    one, backfill = build(find(name))
    return one if kind == "run" else backfill
