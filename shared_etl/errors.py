"""The events pipeline's own errors; the runtime's (parity.errors) are re-exported, since the
events pipeline's callers have always found them here.

Each carries a message a user can act on, naming the file: the reference runner prints one
line and exits 2 (whole-file problems) or 1 (a step failed); the orchestrators show them as
the failed task's error. Anything else is a bug and keeps its traceback.
"""

from parity.errors import (
    InputError,
    LostFileError,
    MachineFaultError,
    PipelineError,
    TransientStepError,
    UsageError,
    is_retryable,
    os_cause,
)

__all__ = [
    "InputFileError",
    "LostFileError",
    "MachineFaultError",
    "PipelineError",
    "RevenueOverflowError",
    "TransientStepError",
    "UsageError",
    "is_retryable",
    "os_cause",
]


class InputFileError(InputError):
    """A whole-file error: the input cannot be read as an events CSV at all (exit 2)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class RevenueOverflowError(PipelineError):
    """A revenue sum does not fit decimal128(18, 2)."""
