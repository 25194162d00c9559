"""The flows of the pipelines registered with the deployed stack (stack/pipelines.py), as the
entrypoint of their deployments: `prefect/deployed_pipelines.py:run_<name>` (one run) and
`…:backfill_<name>` (a backfill), both built by prefect/adapter.py from the declaration.

prefect/run_pipeline_deployed.py deploys them, and a worker's flow-run process loads them here
by attribute, so a pipeline is found by its name in the registry when the run starts, not
fixed in a deployment file: each pipeline's deployments are its own (two run side by side).

In local mode a run's staged results live in the staging area its command holds, removed when
the command ends. A worker's flow-run process has no such command, so here each flow's task
runner holds an area of its own (parity.staging) for the flow run: Prefect enters the task
runner before the flow's body and leaves it after every task thread has ended, so the area,
a backfill's shared results included, outlives every step that reads it and is removed when
the run ends, whether it succeeded or failed; a killed run's area is cleared by a later
command, as any dead area is.
"""

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

# adapter.py and prefect_env.py, however this file is loaded; stack/, from the checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parent.parent))

import prefect_env  # isort: split

from adapter import build
from prefect.flows import Flow
from prefect.task_runners import ThreadPoolTaskRunner

from parity.staging import staging_area
from stack.pipelines import find

HERE = Path(__file__).resolve().parent

KINDS = ("run", "backfill")


class StagingTaskRunner(ThreadPoolTaskRunner):
    """Prefect's thread pool, holding a staging area from before the flow's body starts until
    after its last task thread has ended (the area is $ETL_STAGING_ROOT meanwhile)."""

    def __init__(self, label: str, max_workers: int | None = None) -> None:
        super().__init__(max_workers=max_workers)
        self._label = label
        self._held: ExitStack | None = None

    def duplicate(self) -> "StagingTaskRunner":
        return type(self)(self._label, max_workers=self._max_workers)

    def __enter__(self) -> "StagingTaskRunner":
        held = ExitStack()
        held.enter_context(staging_area(self._label))
        try:
            super().__enter__()
        except BaseException:
            held.close()
            raise
        self._held = held
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            super().__exit__(*exc)  # waits for the task threads
        finally:
            held, self._held = self._held, None
            if held is not None:
                held.close()

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_held": None}


def entrypoint(kind: str, name: str) -> str:
    """The deployment's entrypoint of pipeline `name`'s `kind` of flow."""
    return f"{Path(__file__).relative_to(HERE.parent)}:{kind}_{name}"


def __getattr__(attribute: str) -> Flow:
    kind, _, name = attribute.partition("_")
    if kind not in KINDS or not name:
        raise AttributeError(attribute)
    built = build(find(name))[KINDS.index(kind)]
    workers = getattr(built.task_runner, "_max_workers", None)  # the adapter's choice, kept
    return built.with_options(task_runner=StagingTaskRunner(f"prefect-{kind}-{name}", workers))
