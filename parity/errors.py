"""The errors a run can end with, each with a message a user can act on and an exit status.

`PipelineError` subclasses are the expected failures: a runner prints one line and exits with
`exit_code` (2: the input, the parameters or the declaration; 1: a step failed); an
orchestrator shows the failed task's line. Whether a retry may cure one is `is_retryable`,
which every adapter maps onto its orchestrator's own retry condition.
"""

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager


class PipelineError(Exception):
    """A run cannot produce its outputs; nothing has been written under an output name."""

    exit_code = 1


class UsageError(PipelineError):
    """A parameter is unusable (a date that is no date, an output name that is no .parquet)."""

    exit_code = 2


class DeclarationError(UsageError):
    """A pipeline that no orchestrator could run as declared: refused before any run."""


class InputError(PipelineError):
    """Raised by a step when its input is unusable: deterministic, so never retried."""

    exit_code = 2


class ResultError(PipelineError):
    """A step's result cannot be staged or published (no table, a null or duplicated key)."""


class TransientStepError(PipelineError):
    """A failure that a retry may cure; raised on purpose by the fault injection."""


class MachineFaultError(PipelineError):
    """The machine refused a file operation: a read-only or full disk, permission denied, a
    folder that is a file. The same call fails the same way on a retry, so none is made; the
    message names the path and the cause instead of a traceback."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem

    @classmethod
    @contextmanager
    def on_os_error(cls, path: str, action: str) -> Iterator[None]:
        """Turn an OSError in the block (Python's or pyarrow's) into this error."""
        try:
            yield
        except PipelineError:
            raise
        except OSError as exc:
            raise cls(path, f"cannot {action}: {os_cause(exc)}") from exc


class LostFileError(PipelineError):
    """A file this run created, and held, was removed by another process before the run was
    done with it. Not a fault of the user's disk, nor of the input: something else cleared
    the folder. A retry makes fresh files, so it may cure it (is_retryable says so)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


_ERRNO_IN_TEXT = re.compile(r"\[?errno (\d+)\]?", re.IGNORECASE)


def os_cause(error: OSError) -> str:
    """The operating system's words for `error`: pyarrow puts the errno only in its text."""
    number = error.errno
    if number is None and (found := _ERRNO_IN_TEXT.search(str(error))):
        number = int(found.group(1))
    if number is not None and number in errno.errorcode:
        return os.strerror(number)
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def is_retryable(error: BaseException) -> bool:
    """Whether an orchestrator's retry may cure `error`.

    The pipeline's own errors are deterministic (the same input fails the same way), except
    the transient one and a file another process took from the run (LostFileError); machine
    faults come as MachineFaultError and are not retried either. Anything else (a lost
    connection, a bug that may be a race) may pass.
    """
    return isinstance(error, TransientStepError | LostFileError) or not isinstance(
        error, PipelineError
    )


def to_wire(error: PipelineError) -> dict[str, object]:
    """A pipeline error as a worker leaves it for the command that waits in another process
    (an Airflow XCom, a Dagster run tag): its class, its one line and its exit status, in
    JSON's types, so the command ends with the worker's line and status, not the
    orchestrator's wording of them."""
    return {"class": type(error).__name__, "message": str(error), "exit_code": error.exit_code}


def from_wire(value: object) -> PipelineError | None:
    """The error `to_wire` left, to raise in the waiting command; None for anything else."""
    if not isinstance(value, dict) or not isinstance(value.get("message"), str):
        return None
    error = PipelineError(value["message"])
    error.exit_code = int(value.get("exit_code", 1))
    return error
