"""shared_etl: the events pipeline of docs/contract.md, the one implementation every
orchestrator wrapper calls. Orchestrators import the steps from here and nothing else."""

from parity.staging import staging_area
from shared_etl.errors import (
    InputFileError,
    MachineFaultError,
    PipelineError,
    TransientStepError,
    UsageError,
    is_retryable,
)
from shared_etl.steps import (
    AggregateResult,
    PreparedRun,
    aggregate,
    check_output_dir,
    check_output_path,
    dates_between,
    discard_staging,
    new_staging_dir,
    parse_date,
    prepare,
)

__all__ = [
    "AggregateResult",
    "InputFileError",
    "MachineFaultError",
    "PipelineError",
    "PreparedRun",
    "TransientStepError",
    "UsageError",
    "aggregate",
    "check_output_dir",
    "check_output_path",
    "dates_between",
    "discard_staging",
    "is_retryable",
    "new_staging_dir",
    "parse_date",
    "prepare",
    "staging_area",
]
