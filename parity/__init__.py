"""parity: the orchestrator-free runtime of the harness (docs/contract.md).

A pipeline file imports only this: `Pipeline`, `step`, `Output` and `InputError`. The rest of
the package is what every adapter shares (binding, staging, publication, liveness, errors);
it imports no orchestrator, which tests/test_parity_runtime.py checks.
"""

from parity.declaration import Output, Parameter, Pipeline, Step, step
from parity.errors import (
    DeclarationError,
    InputError,
    PipelineError,
    UsageError,
    is_retryable,
)

__all__ = [
    "DeclarationError",
    "InputError",
    "Output",
    "Parameter",
    "Pipeline",
    "PipelineError",
    "Step",
    "UsageError",
    "is_retryable",
    "step",
]
