"""The resources a run of a declared pipeline uses, in this process or in a launched one: the
variables its caller passed as tags, its staging folder, and the handles between its ops."""

import os
import shutil
from collections.abc import Iterator, Mapping

import dagster as dg
from parity.faults import FAIL_ATTEMPTS, FAIL_STEP
from parity.staging import run_folder, staging_area

# Variables a launched run carries as tags `etl/<NAME>`: the DefaultRunLauncher starts every
# run's process with the code server's environment, so a caller's variable travels this way
# (the fault injection's, parity.faults; the events pipeline's ETL_FAIL_ATTEMPTS is turned
# into them by parity/cli.py before anything is launched).
RUN_VARIABLES = (FAIL_STEP, FAIL_ATTEMPTS)
RUN_VARIABLE_TAG = "etl/{}"


@dg.resource
def run_variables(context: dg.InitResourceContext) -> Iterator[None]:
    """Set the run's `etl/<NAME>` tags as variables of the process executing it, for the run.

    That process runs this run alone (in-process executor, one run per launched process), so
    the change is the run's own; in local mode no such tag is given and nothing changes.
    """
    tags = context.run.tags if context.run else {}
    given = {name: tags[RUN_VARIABLE_TAG.format(name)] for name in RUN_VARIABLES
             if RUN_VARIABLE_TAG.format(name) in tags}  # fmt: skip
    before = {name: os.environ.get(name) for name in given}
    os.environ.update(given)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dg.resource
def staging(context: dg.InitResourceContext) -> Iterator[str]:
    """A launched run's staging area (the deployed stack's run workers, `dagster dev`): its
    process holds no area of a command's, so it holds its own for as long as the run lasts,
    removed when the run ends, in success or failure, or by a later run if it was killed."""
    with staging_area(f"dagster-{context.run.run_id}") as area:
        yield area


def command_staging(keep: bool = False) -> dg.ResourceDefinition:
    """A run in this command's process: its folder inside the area the command holds, removed
    when the run ends, in success or failure. A backfill's shared run `keep`s it: the date
    runs read its results; the command's area takes it away once every date has run."""

    @dg.resource
    def staging_in_command(context: dg.InitResourceContext) -> Iterator[str]:
        folder = run_folder(f"dagster-{context.run.run_id}")
        try:
            yield folder
        finally:
            if not keep:
                shutil.rmtree(folder, ignore_errors=True)

    return staging_in_command


class Handles(dg.IOManager):
    """The handles between a run's ops, in memory (one run, one process); an input whose step
    is not in the run (a backfill's date-independent steps) comes from `earlier`."""

    def __init__(self, earlier: Mapping[str, dict]) -> None:
        self.earlier, self.own = dict(earlier), {}

    def handle_output(self, context: dg.OutputContext, obj: dict) -> None:
        self.own[context.step_key] = obj

    def load_input(self, context: dg.InputContext) -> dict:
        if context.upstream_output is not None:
            return self.own[context.upstream_output.step_key]
        if context.name not in self.earlier:
            raise dg.Failure(f"step {context.name!r} ran in no earlier run", allow_retries=False)
        return self.earlier[context.name]


def handles_manager(earlier: Mapping[str, dict]) -> dg.IOManagerDefinition:
    return dg.IOManagerDefinition(lambda _: Handles(earlier))
