"""Fault injection: a step fails its first N attempts with a transient error, so that each
orchestrator's own retries can be watched and counted. Kept free of heavy imports: the events
pipeline's steps use it too."""

import os

from parity.errors import TransientStepError, UsageError

FAIL_STEP = "PARITY_FAIL_STEP"
FAIL_ATTEMPTS = "PARITY_FAIL_ATTEMPTS"


def inject_fault(step: str, attempt: int) -> None:
    """PARITY_FAIL_STEP=<step> PARITY_FAIL_ATTEMPTS=N: that step fails its first N attempts."""
    if os.environ.get(FAIL_STEP) == step:
        fail_first_attempts(step, attempt, FAIL_ATTEMPTS)


def fail_first_attempts(step: str, attempt: int, variable: str) -> None:
    """Fail `step`'s attempt with a transient error while it is within the first N, N being
    $`variable` (also the events pipeline's ETL_FAIL_ATTEMPTS), so retries can be watched."""
    raw = os.environ.get(variable, "0") or "0"
    try:
        failures = int(raw)
    except ValueError:
        raise UsageError(f"{variable}={raw!r} is not a whole number") from None
    if attempt <= failures:
        raise TransientStepError(
            f"{step}: injected transient failure on attempt {attempt} ({variable}={failures})"
        )


def attempt_in_run(try_number: int, max_tries: int, retries: int) -> int:
    """The attempt (1, 2, ...) of a step within the current run of it, for an orchestrator
    whose try count goes on across re-runs: a cleared or reprocessed Airflow task instance
    keeps counting `try_number` and raises `max_tries` to it plus `retries`, so its first try
    of this run is `max_tries - retries + 1` (Airflow's own task_runner reckons so too)."""
    return try_number - (max_tries - retries)
