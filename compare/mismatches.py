"""`--mismatches DIR`: every differing and one-sided row of a comparison, as Parquet to open.

One file per output and per side compared with the baseline, because that is the unit a
verdict line names ("run/metrics: prefect vs reference"), and one file holding both sides
of a row side by side is what a data engineer opens to see a difference (datacompy's
`all_mismatch()` has the same shape); two files per pair would have to be joined again:

    DIR/<output key>.<other side>.parquet      e.g. DIR/run/metrics.prefect.parquet
                                                    DIR/backfill/2024-01-01/metrics.airflow@deployed.parquet
    DIR/<baseline file's stem>.<other path>.parquet   files given directly, e.g.
                                                    DIR/orders.new_orders.parquet
                                                    for old/orders.parquet new/orders.parquet

(the other path relative to the folder all the given files share, with `/` and any
character outside `A-Za-z0-9._@-` as `_`, and `.parquet` cut).
Two pairs that would share a name are an error, never one file replacing the other.

Columns: `mismatch` ("differs", "baseline only" or "other only"); then, keyed, the key
columns (from whichever side holds the row); then every other column of both sides, as
`<name>_baseline` and `<name>_other` side by side (null where that side has no such row),
each in its own side's type, so a schema difference does not stop the file. Keyed rows are
sorted by the key (ties, a repeated key: by the baseline's row, then the other's), so the
same inputs give the same bytes. As a multiset (no key) there are no pairs: a row held n
more times on one side is n rows "baseline only" or "other only", the baseline's first, each
side's in its stored order. The schema metadata names the two files and the key.

Written with the one write recipe's atomic publication (parity.files.atomic_files): under a
temporary name, then renamed, so a failure leaves no half-written file. A pair whose rows do
not differ gets no file, and a file an earlier run left under its name is removed.
"""

import os
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from compare.row_diff import Mismatched, column_labels
from compare.values import comparable, decoded
from parity.errors import MachineFaultError
from parity.files import atomic_files

KIND = "mismatch"
DIFFERS, BASELINE_ONLY, OTHER_ONLY = "differs", "baseline only", "other only"
SUFFIXES = ("_baseline", "_other")
_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")


class MismatchesError(Exception):
    """The mismatch files cannot be written: a bad DIR, or names that would collide."""


def usable_folder(folder: Path) -> Path:
    """`folder`, created if need be, once it is known to take files: checked before anything
    is compared, so a bad DIR costs no comparison."""
    if folder.exists() and not folder.is_dir():
        raise MismatchesError(f"{folder}: not a folder (--mismatches DIR)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MismatchesError(f"{folder}: cannot create the folder (--mismatches DIR): "
                              f"{exc.strerror or exc}") from None  # fmt: skip
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MismatchesError(f"{folder}: not writable (--mismatches DIR)")
    return folder


def mismatch_path(folder: Path, output: str, other: str, given: list[str] | None) -> Path:
    """Where the rows of `output` compared with `other` go (see the module's docstring);
    `given`: the paths of files given directly, whose common folder is left out of the name."""
    if given is not None:
        common = os.path.commonpath([os.path.abspath(path) for path in given])
        if os.path.isfile(common):  # (never: two files are refused as one)
            common = os.path.dirname(common)
        name = os.path.relpath(os.path.abspath(other), common)
        return folder / f"{_safe(Path(output).stem)}.{_safe(_stem(name))}.parquet"
    parts = [_safe(part) for part in output.split("/") if part]
    return folder.joinpath(*parts[:-1], f"{parts[-1]}.{_safe(other)}.parquet")


def _stem(path: str) -> str:
    return path[: -len(".parquet")] if path.endswith(".parquet") else path


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).lstrip(".") or "_"


def mismatch_table(left: pa.Table, right: pa.Table, pairs: list[tuple[int, int]],
                   rows: Mismatched, grain: tuple[str, ...] | None,
                   sources: tuple[str, str]) -> pa.Table:
    """The rows of `rows` as one table: kind, key (keyed), both sides' other columns."""
    differs_left, differs_right = rows.differs
    counts = (len(differs_left), len(rows.left_only), len(rows.right_only))
    nothing = (pa.nulls(counts[2], pa.int64()), pa.nulls(counts[1], pa.int64()))
    at_left = pa.concat_arrays([differs_left, rows.left_only, nothing[0]])
    at_right = pa.concat_arrays([differs_right, nothing[1], rows.right_only])
    kind = pa.concat_arrays([pa.repeat(pa.scalar(text), n)
                             for text, n in zip((DIFFERS, BASELINE_ONLY, OTHER_ONLY), counts,
                                                strict=True)])  # fmt: skip
    keys = [(i, j) for i, j in pairs if rows.keyed and grain
            and left.column_names[i] in grain]  # fmt: skip
    columns: dict[str, pa.Array | pa.ChunkedArray] = {KIND: kind}
    for i, j in keys:
        columns[left.column_names[i]] = pc.coalesce(decoded(left.column(i)).take(at_left),
                                                    decoded(right.column(j)).take(at_right))
    paired = dict(pairs)
    left_names = column_labels(left.column_names)
    right_names = column_labels(right.column_names)
    key_left, key_right = {i for i, _ in keys}, {j for _, j in keys}
    shown_right = set(key_right)
    for i in range(left.num_columns):
        if i in key_left:
            continue
        columns[left_names[i] + SUFFIXES[0]] = left.column(i).take(at_left)
        j = paired.get(i)
        if j is not None:
            columns[right_names[j] + SUFFIXES[1]] = right.column(j).take(at_right)
            shown_right.add(j)
    for j in range(right.num_columns):
        if j not in shown_right:
            columns[right_names[j] + SUFFIXES[1]] = right.column(j).take(at_right)
    names = [KIND] + [left.column_names[i] for i, _ in keys] + [
        left_names[i] + SUFFIXES[0] for i in range(left.num_columns) if i not in key_left] + [
        right_names[j] + SUFFIXES[1] for j in range(right.num_columns) if j not in key_right]
    clashes = sorted(name for name, n in Counter(names).items() if n > 1)
    if clashes:
        raise MismatchesError(f"{sources[0]} vs {sources[1]}: the mismatch columns "
                              f"{', '.join(clashes)} would be named alike (a column already "
                              f"ends in {' or '.join(SUFFIXES)}, or is named {KIND})")
    metadata = {"parity.baseline": sources[0], "parity.other": sources[1],
                "parity.key": ",".join(grain) if rows.keyed and grain else ""}  # fmt: skip
    table = pa.table(columns).replace_schema_metadata(metadata)
    if not keys:
        return table  # a multiset: each side's rows in its stored order, the baseline's first
    order = [(f"k{n}", "ascending") for n in range(len(keys))] + [("l", "ascending"),
                                                                  ("r", "ascending")]
    sortable = pa.table({**{f"k{n}": _sortable(table.column(1 + n)) for n in range(len(keys))},
                         "l": at_left, "r": at_right})  # fmt: skip
    return table.take(pc.sort_indices(sortable, sort_keys=order))


def _sortable(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A key column Arrow can sort: nested values as their text, any other as it is."""
    return comparable(column) if pa.types.is_nested(column.type) else column


def write_mismatches(table: pa.Table, path: Path) -> None:
    """Publish `table` at `path` atomically, always the same bytes for the same table."""
    try:
        with atomic_files(str(path)) as [temporary]:
            pq.write_table(table, temporary, compression="zstd", write_statistics=True)
    except MachineFaultError as exc:
        raise MismatchesError(str(exc)) from None


def remove_stale(path: Path) -> None:
    """No rows differ for this pair: a file an earlier run wrote for it would mislead."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise MismatchesError(f"{path}: cannot remove an earlier run's mismatches "
                              f"({exc.strerror or exc})") from None  # fmt: skip
