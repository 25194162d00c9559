"""The pipeline as steps an orchestrator calls as separate tasks (the public API).

    prepared = prepare(input_path, staging_dir)            # once per input
    aggregate(prepared, output_path, date=None, attempt=1)  # once per output (per date)
    discard_staging(staging_dir)                            # when every aggregate is done

Every command holds a staging area (staging.py) for its whole run, and `new_staging_dir`
makes a run's folder inside it: a killed run's files are cleared by the next run. Output
paths are checked (`check_output_path`, `check_output_dir`) before the input is read, and
machine faults become MachineFaultError: one line naming the path and the cause, no retry.

`prepare` reads, validates and de-duplicates the whole file and stages the kept events and
the quarantine as files in a run-scoped folder; it returns a small JSON-able handle, which
is all an orchestrator passes between tasks. `aggregate` windows, aggregates and publishes
the metrics, the quarantine and the manifest together. A backfill prepares once and fans
out one aggregate per date; de-duplication over the whole file comes first (contract §4).
"""

import datetime as dt
import os
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.ipc as ipc

from parity.faults import fail_first_attempts
from parity.files import atomic_files, check_output_dir, file_sha256, write_json, write_parquet
from parity.staging import staging_root
from shared_etl.contract import METRICS_SCHEMA, REJECTS_SCHEMA, manifest_path, rejects_path
from shared_etl.errors import MachineFaultError, UsageError
from shared_etl.events import prepare_events
from shared_etl.manifest import build_manifest
from shared_etl.metrics import daily_metrics, rows_in_window

FAULT_VARIABLE = "ETL_FAIL_ATTEMPTS"
_STAGED_EVENTS = "events.arrow"
_STAGED_REJECTS = "rejects.parquet"


@dataclass(frozen=True)
class PreparedRun:
    """What `prepare` hands to `aggregate`: paths and counts, never the data itself."""

    input_path: str
    staging_dir: str
    input_sha256: str
    input_bytes: int
    records_read: int
    rejected: int
    rejected_by_reason: dict[str, int]
    duplicates: int
    kept: int
    attempts: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PreparedRun":
        return cls(**data)


@dataclass(frozen=True)
class AggregateResult:
    """What one `aggregate` published."""

    output_path: str
    date: str | None
    metric_rows: int
    out_of_window: int
    manifest_path: str
    attempts: int
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def new_staging_dir(run_id: str | None = None) -> str:
    """A folder for one run's staged files, in the held staging area (see staging.py)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id or f"run-{uuid.uuid4().hex[:12]}")
    path = os.path.join(staging_root(), name)
    with MachineFaultError.on_os_error(path, "create the staging folder"):
        os.makedirs(path, exist_ok=True)
    return path


def prepare(input_path: str, staging_dir: str, attempt: int = 1) -> PreparedRun:
    """Read, validate and de-duplicate `input_path`; stage the results in `staging_dir`."""
    started = time.perf_counter()
    events = prepare_events(input_path)
    with atomic_files(
        os.path.join(staging_dir, _STAGED_EVENTS), os.path.join(staging_dir, _STAGED_REJECTS)
    ) as (events_file, rejects_file):
        with ipc.new_file(events_file, events.kept.schema) as writer:
            writer.write_table(events.kept)
        write_parquet(events.rejects, REJECTS_SCHEMA, rejects_file)
    prepared = PreparedRun(
        input_path=input_path,
        staging_dir=staging_dir,
        input_sha256=events.facts.sha256,
        input_bytes=events.facts.size_bytes,
        records_read=events.records_read,
        rejected=events.rejected,
        rejected_by_reason=events.rejected_by_reason(),
        duplicates=events.duplicates,
        kept=events.kept.num_rows,
        attempts=attempt,
        seconds=round(time.perf_counter() - started, 3),
    )
    # Hand the blocks' memory back before the aggregate, often in this same process, needs
    # its own: Arrow's allocator would otherwise keep it (about a third of the peak RSS).
    del events
    pa.default_memory_pool().release_unused()
    return prepared


def aggregate(
    prepared: PreparedRun,
    output_path: str,
    date: str | dt.date | None = None,
    attempt: int = 1,
    orchestrator: dict[str, str] | None = None,
) -> AggregateResult:
    """Publish the metrics of `date` (all dates if None), the quarantine and the manifest.

    `attempt` is the orchestrator's own count of this task's tries (1 for the first); the
    fault injection of contract §8 keys on it, so retries are the orchestrator's, not ours.
    """
    started = time.perf_counter()
    day = parse_date(date)
    check_output_path(output_path)
    fail_first_attempts("aggregate", attempt, FAULT_VARIABLE)
    with ipc.open_file(os.path.join(prepared.staging_dir, _STAGED_EVENTS)) as reader:
        kept = reader.read_all()
    in_window = rows_in_window(kept, day)
    metrics = daily_metrics(in_window)
    targets = {
        "metrics": output_path,
        "rejects": rejects_path(output_path),
        "manifest": manifest_path(output_path),
    }
    with atomic_files(*targets.values()) as (metrics_file, rejects_file, manifest_file):
        write_parquet(metrics, METRICS_SCHEMA, metrics_file)
        shutil.copyfile(os.path.join(prepared.staging_dir, _STAGED_REJECTS), rejects_file)
        result = AggregateResult(
            output_path=output_path,
            date=day.isoformat() if day else None,
            metric_rows=metrics.num_rows,
            out_of_window=kept.num_rows - in_window.num_rows,
            manifest_path=targets["manifest"],
            attempts=attempt,
            files={
                "metrics": file_sha256(metrics_file),
                "rejects": file_sha256(rejects_file),
            },
        )
        manifest = build_manifest(
            prepared.to_dict(),
            result.to_dict(),
            orchestrator or {"name": "reference"},
            aggregate_seconds=round(time.perf_counter() - started, 3),
        )
        write_json(manifest, manifest_file)
    return result


def discard_staging(staging_dir: str) -> None:
    """Remove a run's staged files once every aggregate has published (or the run failed)."""
    shutil.rmtree(staging_dir, ignore_errors=True)


def parse_date(date: str | dt.date | None) -> dt.date | None:
    """`YYYY-MM-DD` (exactly that form) to a date; None or "" means all dates."""
    if date is None or date == "":
        return None
    if isinstance(date, dt.date):
        return date
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", date):
        raise UsageError(f"date {date!r} is not of the form YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(date)
    except ValueError as exc:
        raise UsageError(f"date {date!r} is not a calendar date: {exc}") from None


def dates_between(start: str, end: str) -> list[str]:
    """Every date from `start` to `end` inclusive, as YYYY-MM-DD (a backfill's partitions)."""
    first, last = parse_date(start), parse_date(end)
    if first is None or last is None:
        raise UsageError("a backfill needs both a start and an end date")
    if last < first:
        raise UsageError(f"backfill end {end} is before its start {start}")
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def check_output_path(output_path: str) -> None:
    """Refuse, before any input is read, an output that could never be published: a name
    that is no `<name>.parquet` (a hidden `.parquet` is a temporary's name to compare) or a
    folder the machine will not let us write (read-only, permission denied, a file)."""
    name = os.path.basename(output_path)
    if not name.endswith(".parquet") or name.startswith("."):
        raise UsageError(
            f"output path {output_path!r} must end with .parquet and name a file: <name>.parquet"
        )
    check_output_dir(os.path.dirname(output_path) or ".")
