"""Publication of a run's outputs: each result made a table with a grain, sorted by its key,
written with the one recipe (parity.files), all files of a run renamed into place together.

A verdict needs a grain, so a null or duplicated key is refused (exit 1) rather than
published. Column types are pyarrow's for the result (`pa.Table.from_pandas`); a named pandas
index becomes columns, an unnamed one is dropped, and no pandas metadata reaches the file.
"""

import os
from collections.abc import Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from parity.declaration import Output
from parity.errors import ResultError
from parity.files import atomic_files, file_sha256, write_json, write_parquet


def output_table(output: Output, result: pd.DataFrame | pa.Table) -> pa.Table:
    """The table `output` publishes: key checked, sorted by key, no metadata."""
    if isinstance(result, pd.DataFrame):
        try:
            unnamed = [level for level, name in enumerate(result.index.names) if name is None]
            if len(unnamed) < result.index.nlevels:  # named levels become columns
                result = result.reset_index(level=unnamed, drop=True).reset_index()
            table = pa.Table.from_pandas(result, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise ResultError(
                f"output {output.name!r}: not a table of Parquet types: {exc}"
            ) from None
    else:
        table = result
    table = table.replace_schema_metadata(None)
    table = pa.Table.from_arrays(
        table.columns, schema=pa.schema([field.remove_metadata() for field in table.schema])
    )
    key = list(output.key)
    names = table.column_names
    if len(set(names)) != len(names):
        raise ResultError(f"output {output.name!r}: two columns share one name")
    missing = [column for column in key if column not in names]
    if missing:
        raise ResultError(
            f"output {output.name!r}: key column(s) {', '.join(missing)} not "
            f"in its columns ({', '.join(names)})"
        )
    for column in key:
        nulls = table[column].null_count
        if nulls:
            raise ResultError(
                f"output {output.name!r}: key column {column!r} has {nulls} "
                "null value(s); a verdict needs a grain"
            )
    if table.num_rows:
        try:
            distinct = table.group_by(key).aggregate([]).num_rows
        except pa.ArrowNotImplementedError as exc:
            raise ResultError(f"output {output.name!r}: its key cannot be a grain: {exc}") from None
        if distinct != table.num_rows:
            raise ResultError(
                f"output {output.name!r}: {table.num_rows - distinct} row(s) repeat a key "
                f"({', '.join(key)}) another row has; a verdict needs a grain"
            )
    order = pc.sort_indices(table, sort_keys=[(column, "ascending") for column in key])
    return table.take(order).combine_chunks()


def publish(tables: Mapping[str, pa.Table], paths: Mapping[str, str], manifest_path: str,
            manifest: dict) -> dict[str, str]:  # fmt: skip
    """Write each table at its path and the manifest (with each file's name and sha256),
    atomically; return the sha256 by output."""
    names = sorted(tables)
    with atomic_files(*(paths[name] for name in names), manifest_path) as temporaries:
        digests = {}
        for name, temporary in zip(names, temporaries, strict=False):
            write_parquet(tables[name], tables[name].schema, temporary)
            digests[name] = file_sha256(temporary)
        outputs = manifest.setdefault("outputs", {})
        for name in names:
            entry = outputs.setdefault(name, {})
            entry["file"], entry["sha256"] = os.path.basename(paths[name]), digests[name]
        write_json(manifest, temporaries[-1])
    return digests
