"""The errors a run can end with. Each carries a message a user can act on, naming the file.

`PipelineError` subclasses are the expected failures: the reference runner prints them as
one line and exits 2 (whole-file problems) or 1 (a step failed); the orchestrators show them
as the failed task's error. Anything else is a bug and keeps its traceback.
"""


class PipelineError(Exception):
    """A run cannot produce its outputs; nothing has been written under an output name."""

    exit_code = 1


class InputFileError(PipelineError):
    """SPEC §1 whole-file error: the input cannot be read as an events CSV at all."""

    exit_code = 2

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class UsageError(PipelineError):
    """A parameter is unusable (a date that is no date, an output name that is no .parquet)."""

    exit_code = 2


class RevenueOverflowError(PipelineError):
    """A revenue sum does not fit decimal128(18, 2) (SPEC §3)."""


class TransientStepError(PipelineError):
    """A failure that a retry may cure; raised on purpose by the fault injection (SPEC §8)."""


def is_retryable(error: BaseException) -> bool:
    """Whether an orchestrator's retry may cure `error`.

    The pipeline's own errors are deterministic (the same input fails the same way), except
    the transient one; anything else (a full disk, a lost mount) may pass. Each wrapper maps
    this onto its orchestrator's own retry condition.
    """
    return isinstance(error, TransientStepError) or not isinstance(error, PipelineError)
