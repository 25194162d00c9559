"""How a failed step's one line and exit status travel through Dagster's record of a run, and
how they are read back: in this process (the local adapter's runs) or through the webserver's
GraphQL API (graphql_runs.py). One format for both, so a run gives the same line and status
whoever started it.

A step that fails for good raises a `dg.Failure` whose description is the step's line
(parity.execution.step_failure) and whose metadata `exit_code` is its status, read back as
parity.errors.from_wire reads every adapter's; its retries
are Dagster's only when a retry may pass (parity.is_retryable).
"""

from collections.abc import Sequence

import dagster as dg
from parity.errors import PipelineError, from_wire, is_retryable
from parity.execution import step_failure

EXIT_CODE = "exit_code"  # the Failure's metadata entry that holds the step's exit status


def failure_of(step: str, error: Exception) -> dg.Failure:
    """The Failure the op of `step` raises for `error`."""
    found = step_failure(step, error)
    return dg.Failure(str(found), metadata={EXIT_CODE: found.exit_code},
                      allow_retries=is_retryable(error))  # fmt: skip


def pipeline_error(run_id: str, events: Sequence[dg.DagsterEvent]) -> PipelineError:
    """The one line behind a failed run, from Dagster's record: the failed op's Failure, else
    the first error recorded, else where to look."""
    failed = [event for event in events if event.is_step_failure]
    for event in failed:
        user = event.step_failure_data.user_failure_data
        if user is not None and user.description:
            code = user.metadata.get(EXIT_CODE)
            return from_wire({"message": user.description,
                              "exit_code": code.value if code is not None else 1})  # fmt: skip
    errors = [getattr(event.event_specific_data, "error", None) for event in failed or events]
    if found := [error for error in errors if error is not None]:
        cause = " ".join(found[0].message.split())
        return PipelineError(f"dagster run {run_id} failed: {cause}")
    return PipelineError(f"dagster run {run_id} failed: see its log")
