"""How two Parquet files differ, most decisive first.

1. bytes equal: nothing to say;
2. content equal, bytes not: same schema and rows, so it is the file itself (writer version
   in `created_by`, key-value metadata, compression, row groups, encodings, statistics);
3. schema: fields added, removed, reordered, retyped, nullability;
4. rows, keyed on the grain: rows on one side only, and per column the differing cells.
A canonical content hash (schema + rows in grain order) beside the byte hash tells 2 from 3-4.
"""

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

GRAINS = {
    "metrics": ("event_date", "country", "event_type"),
    "rejects": ("source_row",),
}
SAMPLES = 3


class NotParquetError(Exception):
    """A file to compare cannot be read, read as Parquet, or turned into values."""


@dataclass(frozen=True)
class ParquetFacts:
    path: Path
    sha256: str
    content_sha256: str
    table: pa.Table
    metadata: pq.FileMetaData
    grain: tuple[str, ...]


def read_facts(path: Path) -> ParquetFacts:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NotParquetError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        parquet = pq.ParquetFile(path)
        table = parquet.read()
    except (pa.ArrowException, OSError) as exc:
        raise NotParquetError(f"{path}: not a Parquet file ({exc})") from None
    grain = (
        _declared_grain(path)
        or GRAINS["rejects" if path.name.endswith(".rejects.parquet") else "metrics"]
    )
    if not set(grain) <= set(table.column_names):
        grain = tuple(table.column_names)
    try:  # every later step reads Python values: a value with none fails here, named
        content_sha256 = _content_sha256(table, grain)
    except (ValueError, OverflowError, pa.ArrowException) as exc:
        raise NotParquetError(f"{path}: holds a value that cannot be read ({exc})") from None
    return ParquetFacts(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        content_sha256=content_sha256,
        table=table,
        metadata=parquet.metadata,
        grain=grain,
    )


def _declared_grain(path: Path) -> tuple[str, ...] | None:
    """The key a declared pipeline's manifest.json beside the file records for it."""
    manifest = path.with_name("manifest.json")
    if not manifest.is_file():
        return None
    try:
        recorded = json.loads(manifest.read_text())["outputs"][path.name.removesuffix(".parquet")]
        key = tuple(recorded["key"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NotParquetError(f"{manifest}: a damaged manifest, no key for {path.name} "
                              f"({type(exc).__name__}: {exc})") from None  # fmt: skip
    if not key or not all(isinstance(column, str) for column in key):
        raise NotParquetError(f"{manifest}: the key of {path.name} is no list of column names")
    return key


def _content_sha256(table: pa.Table, grain: tuple[str, ...]) -> str:
    """Schema (names, types, nullability) and rows in grain order, blind to file layout."""
    digest = hashlib.sha256(table.schema.to_string(show_schema_metadata=False).encode())
    ordered = table.sort_by([(name, "ascending") for name in grain]) if table.num_rows else table
    for row in ordered.to_pylist():
        digest.update(json.dumps(list(row.values()), default=str).encode() + b"\n")
    return digest.hexdigest()


def explain(reference: ParquetFacts, other: ParquetFacts) -> dict:
    """{"verdict": identical | content-equal | schema-differs | rows-differ, "details": [...]}"""
    if reference.sha256 == other.sha256:
        return {"verdict": "identical", "details": []}
    if reference.content_sha256 == other.content_sha256:
        return {"verdict": "content-equal", "details": _file_differences(reference, other)}
    schema = _schema_differences(reference.table.schema, other.table.schema)
    if schema:
        return {"verdict": "schema-differs", "details": schema}
    return {"verdict": "rows-differ", "details": _row_differences(reference, other)}


def _file_differences(reference: ParquetFacts, other: ParquetFacts) -> list[str]:
    left, right = reference.metadata, other.metadata
    details = []
    if left.created_by != right.created_by:
        details.append(f"created_by (the writer): {left.created_by!r} vs {right.created_by!r}")
    left_kv, right_kv = dict(left.metadata or {}), dict(right.metadata or {})
    for key in sorted(set(left_kv) | set(right_kv)):
        if left_kv.get(key) != right_kv.get(key):
            state = "only in one file" if key not in left_kv or key not in right_kv else "differs"
            details.append(f"key-value metadata {key.decode(errors='replace')!r} {state}")
    if left.format_version != right.format_version:
        details.append(f"format version: {left.format_version} vs {right.format_version}")
    left_groups = [left.row_group(i).num_rows for i in range(left.num_row_groups)]
    right_groups = [right.row_group(i).num_rows for i in range(right.num_row_groups)]
    if left_groups != right_groups:
        details.append(f"row groups (rows each): {left_groups} vs {right_groups}")
    else:
        for aspect in ("compression", "encodings", "statistics"):
            columns = [
                left.schema.column(i).name
                for i in range(left.num_columns)
                if any(
                    _chunk_aspect(left, g, i, aspect) != _chunk_aspect(right, g, i, aspect)
                    for g in range(left.num_row_groups)
                )
            ]
            if columns:
                sample = _chunk_aspect(left, 0, 0, aspect), _chunk_aspect(right, 0, 0, aspect)
                details.append(
                    f"{aspect} differs in {len(columns)} column(s) ({', '.join(columns)}); "
                    f"first column: {sample[0]} vs {sample[1]}"
                )
    return details or ["the bytes differ but no file-level field explains it"]


def _chunk_aspect(metadata: pq.FileMetaData, group: int, column: int, aspect: str) -> str:
    chunk = metadata.row_group(group).column(column)
    if aspect == "compression":
        return chunk.compression
    if aspect == "encodings":
        return ",".join(sorted(chunk.encodings))
    stats = chunk.statistics
    if stats is None:
        return "none"
    bounds = f"min={stats.min!r} max={stats.max!r}" if stats.has_min_max else "no min/max"
    return f"{bounds} nulls={stats.null_count}"


def _schema_differences(left: pa.Schema, right: pa.Schema) -> list[str]:
    details = []
    left_names, right_names = left.names, right.names
    added = [name for name in right_names if name not in left_names]
    removed = [name for name in left_names if name not in right_names]
    if added:
        details.append(f"fields added: {', '.join(added)}")
    if removed:
        details.append(f"fields removed: {', '.join(removed)}")
    common = [name for name in left_names if name in right_names]
    if common != [name for name in right_names if name in left_names]:
        details.append(f"fields reordered: {left_names} vs {right_names}")
    for name in common:
        a, b = left.field(name), right.field(name)
        if a.type != b.type:
            details.append(f"field {name} retyped: {a.type} vs {b.type}")
        if a.nullable != b.nullable:
            details.append(f"field {name} nullability: {a.nullable} vs {b.nullable}")
    if not details and left.metadata != right.metadata:
        details.append("schema metadata differs")
    return details


def _row_differences(reference: ParquetFacts, other: ParquetFacts) -> list[str]:
    grain = reference.grain
    left_rows, right_rows = reference.table.to_pylist(), other.table.to_pylist()
    left = {_key(row, grain): row for row in left_rows}
    right = {_key(row, grain): row for row in right_rows}
    details = [f"rows: {len(left_rows)} vs {len(right_rows)} (keyed on {', '.join(grain)})"]
    for side, rows in (("reference", left_rows), ("other", right_rows)):
        counts = Counter(_key(row, grain) for row in rows)
        repeated = sorted((key for key, count in counts.items() if count > 1), key=str)
        if repeated:
            shown = ", ".join(f"{key} x{counts[key]}" for key in repeated[:SAMPLES])
            details.append(f"{len(repeated)} key(s) duplicated in {side}, e.g. {shown}")
    for side, only in (("reference only", left.keys() - right.keys()),
                       ("other only", right.keys() - left.keys())):  # fmt: skip
        if only:
            shown = ", ".join(str(key) for key in sorted(only, key=str)[:SAMPLES])
            details.append(f"{len(only)} row(s) {side}, e.g. {shown}")
    common = sorted(left.keys() & right.keys(), key=str)
    for column in reference.table.column_names:
        differing = [key for key in common if left[key][column] != right[key][column]]
        if differing:
            samples = "; ".join(
                f"{key}: {left[key][column]!r} vs {right[key][column]!r}"
                for key in differing[:SAMPLES]
            )
            details.append(f"column {column}: {len(differing)} cell(s) differ, e.g. {samples}")
    return details


def _key(row: dict, grain: tuple[str, ...]) -> tuple:
    return tuple(str(row[name]) for name in grain)
