"""How two Parquet files holding the same content differ as files: the writer (`created_by`),
key-value metadata, format version, row groups, and per column chunk its compression,
encodings and statistics, each sample taken from the first column and row group that differ."""

import pyarrow.parquet as pq

from compare.samples import show

ASPECTS = ("compression", "encodings", "statistics")


def file_differences(left: pq.FileMetaData, right: pq.FileMetaData) -> list[str]:
    details = []
    if left.created_by != right.created_by:
        details.append(f"created_by (the writer): {left.created_by!r} vs {right.created_by!r}")
    left_kv, right_kv = dict(left.metadata or {}), dict(right.metadata or {})
    for key in sorted(set(left_kv) | set(right_kv)):
        if left_kv.get(key) != right_kv.get(key):
            state = "only in one file" if key not in left_kv or key not in right_kv else "differs"
            details.append(f"key-value metadata {show(key.decode(errors='replace'))} {state}")
    if left.format_version != right.format_version:
        details.append(f"format version: {left.format_version} vs {right.format_version}")
    left_groups = [left.row_group(i).num_rows for i in range(left.num_row_groups)]
    right_groups = [right.row_group(i).num_rows for i in range(right.num_row_groups)]
    if left_groups != right_groups:
        details.append(f"row groups (rows each): {left_groups} vs {right_groups}")
    elif left.num_columns == right.num_columns:
        details += [line for aspect in ASPECTS if (line := _aspect_line(left, right, aspect))]
    return details or ["the bytes differ but no file-level field explains it"]


def _aspect_line(left: pq.FileMetaData, right: pq.FileMetaData, aspect: str) -> str:
    first = None
    columns = []
    for i in range(left.num_columns):
        for group in range(left.num_row_groups):
            ours = _chunk_aspect(left, group, i, aspect)
            theirs = _chunk_aspect(right, group, i, aspect)
            if ours != theirs:
                columns.append(left.schema.column(i).name)
                first = first or (columns[-1], group, ours, theirs)
                break
    if not first:
        return ""
    name, group, ours, theirs = first
    where = f"{name}, row group {group}" if left.num_row_groups > 1 else name
    return (f"{aspect} differs in {len(columns)} column(s) ({', '.join(columns)}); "
            f"first in {where}: {ours} vs {theirs}")  # fmt: skip


def _chunk_aspect(metadata: pq.FileMetaData, group: int, column: int, aspect: str) -> str:
    chunk = metadata.row_group(group).column(column)
    if aspect == "compression":
        return chunk.compression
    if aspect == "encodings":
        return ",".join(sorted(chunk.encodings))
    stats = chunk.statistics
    if stats is None:
        return "none"
    bounds = f"min={show(stats.min)} max={show(stats.max)}" if stats.has_min_max else "no min/max"
    return f"{bounds} nulls={stats.null_count}"
