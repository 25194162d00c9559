"""From raw records to the kept events and the quarantine (SPEC §2-§4): pure, no I/O."""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from shared_etl.contract import REJECT_REASONS, REJECTS_SCHEMA, STAGED_SCHEMA
from shared_etl.csv_input import RawEvents
from shared_etl.validation import VALID, validate


@dataclass(frozen=True)
class PreparedEvents:
    """Kept events (normalised, file order), the quarantine (by source_row) and the counts."""

    kept: pa.Table
    rejects: pa.Table
    records_read: int
    duplicates: int

    @property
    def rejected(self) -> int:
        return self.rejects.num_rows

    def rejected_by_reason(self) -> dict[str, int]:
        counts = dict.fromkeys(REJECT_REASONS, 0)
        for row in self.rejects["reject_reason"].value_counts().to_pylist():
            counts[row["values"]] = row["counts"]
        return counts


def prepare_events(raw: RawEvents) -> PreparedEvents:
    """Validate, quarantine the rejects, and drop later occurrences of a valid event_id."""
    validated = validate(raw.records)
    rejects = _quarantine(raw, validated.reason, validated.reason != VALID)
    valid = validated.valid
    first = _first_occurrences(valid["event_id"])
    kept = valid.take(pa.array(first)).select(STAGED_SCHEMA.names).cast(STAGED_SCHEMA)
    return PreparedEvents(
        kept=kept,
        rejects=rejects,
        records_read=raw.records_read,
        duplicates=valid.num_rows - kept.num_rows,
    )


def _first_occurrences(event_id: pa.ChunkedArray) -> np.ndarray:
    """Row numbers, ascending, of the first row of each event_id (SPEC §4: file order wins)."""
    numbered = pa.table({"event_id": event_id, "row": pa.array(np.arange(len(event_id)))})
    firsts = numbered.group_by("event_id", use_threads=False).aggregate([("row", "min")])
    return np.sort(firsts["row_min"].to_numpy())


def _quarantine(raw: RawEvents, reason: np.ndarray, is_rejected: np.ndarray) -> pa.Table:
    """Rejected well-formed records and malformed ones, raw text untouched, by source_row."""
    reasons = pa.array(np.asarray(REJECT_REASONS, dtype=object)[reason[is_rejected]], pa.string())
    invalid = raw.records.filter(pa.array(is_rejected)).add_column(1, "reject_reason", reasons)
    malformed = raw.malformed.add_column(
        1, "reject_reason", pa.array(["malformed_record"] * raw.malformed.num_rows, pa.string())
    )
    rejects = pa.concat_tables(
        [invalid.select(REJECTS_SCHEMA.names), malformed.select(REJECTS_SCHEMA.names)]
    )
    return rejects.sort_by("source_row").cast(REJECTS_SCHEMA)
