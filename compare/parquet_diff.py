"""How two Parquet files differ, most decisive first.

1. bytes equal: nothing to say, nothing read beyond the bytes' sha256 and the footer;
2. schema (compare.schema_diff): names repeated, added, removed, reordered; types (a
   dictionary encoding included), nullability, field and schema metadata; the values of
   the columns both sides hold alike are then compared too, so every cause is named;
3. rows (compare.row_diff, in Arrow compute): keyed on the grain, or as a multiset with no
   grain; a difference in the order of the rows alone is its own verdict;
4. content equal, bytes not: the same schema and the same rows in the same order, so it is
   the file itself (compare.file_diff: writer, metadata, compression, row groups, ...).
The grain is `--key`, else the key a declared pipeline's manifest.json records, else, for an
output of the events pipeline, contract §6's; with none, rows are compared as a multiset.
"""

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from compare.file_diff import file_differences
from compare.manifests import declared_grain, events_grain
from compare.row_diff import Mismatched, compare_rows
from compare.schema_diff import column_pairs, schema_differences

MAX_DETAILS = 40  # lines per pair of files; the rest is counted, not listed


class NotParquetError(Exception):
    """A file to compare cannot be read, or read as Parquet."""


class KeyColumnError(Exception):
    """`--key` names a column a file does not have."""


@dataclass
class ParquetFacts:
    path: Path
    sha256: str
    metadata: pq.FileMetaData
    grain: tuple[str, ...] | None

    @cached_property
    def table(self) -> pa.Table:
        """The decoded rows, read only when the bytes differ from the baseline's."""
        try:
            return pq.ParquetFile(self.path).read()  # (not read_table: repeated names)
        except (pa.ArrowException, OSError) as exc:
            raise NotParquetError(f"{self.path}: not a readable Parquet file ({exc})") from None


def read_facts(
    path: Path, key: tuple[str, ...] | None = None, events: bool = False
) -> ParquetFacts:
    """The sha256, footer and grain of `path`; `events`: an output of the events pipeline."""
    try:
        with path.open("rb") as handle:
            sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise NotParquetError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        metadata = pq.ParquetFile(path).metadata
        names = metadata.schema.to_arrow_schema().names
    except (pa.ArrowException, OSError) as exc:
        raise NotParquetError(f"{path}: not a Parquet file ({exc})") from None
    if key:
        missing = [name for name in key if name not in names]
        if missing:
            raise KeyColumnError(f"{path}: no column {', '.join(missing)} "
                                 f"(--key {','.join(key)})")  # fmt: skip
        grain = key
    else:
        grain = declared_grain(path) or (events_grain(path) if events else None)
    return ParquetFacts(path=path, sha256=sha256, metadata=metadata, grain=grain)


def explain(reference: ParquetFacts, other: ParquetFacts,
            labels: tuple[str, str]) -> tuple[dict, Mismatched | None]:
    """{"verdict": identical | content-equal | schema-differs | order-differs | rows-differ,
    "details": [...]}, and the rows that differ (None when none do), for --mismatches;
    `labels` name the baseline and the other file in the details."""
    if reference.sha256 == other.sha256:
        return {"verdict": "identical", "details": []}, None
    left, right = reference.table, other.table
    schema = schema_differences(left.schema, right.schema, labels)
    grain, why = reference.grain, ""
    if grain != other.grain:
        why = (f"the keys differ: {_grain(reference.grain)} in {labels[0]} vs "
               f"{_grain(other.grain)} in {labels[1]}")  # fmt: skip
        grain = None
    pairs = column_pairs(left.schema, right.schema)
    try:
        rows = compare_rows(left, right, pairs, grain, labels, why)
    except (ValueError, OverflowError, pa.ArrowException) as exc:
        raise NotParquetError(f"{reference.path} vs {other.path}: holds values that cannot be "
                              f"compared ({exc})") from None  # fmt: skip
    if schema:
        verdict, details = "schema-differs", schema + ([] if rows.equal else rows.details)
    elif rows.equal:
        verdict, details = "content-equal", file_differences(reference.metadata, other.metadata)
    else:
        verdict, details = ("order-differs" if rows.order_only else "rows-differ"), rows.details
    if len(details) > MAX_DETAILS:
        details = [*details[:MAX_DETAILS],
                   f"… and {len(details) - MAX_DETAILS} more difference(s) not listed"]
    return {"verdict": verdict, "details": details}, rows.mismatched


def _grain(grain: tuple[str, ...] | None) -> str:
    return ", ".join(grain) if grain else "none"
