"""How the rows of two tables differ, computed in Arrow (no Python object per row).

1. In stored order, column by column: when every compared cell is equal, the rows are equal.
2. Keyed on the grain (a hash join on the key): keys repeated or null on either side, rows on
   one side only, and per column the differing cells of the rows both sides hold; when
   that is all equal, the difference is the order of the rows alone, and is named so.
3. With no grain, rows are compared as a multiset (every row counted on both sides), and
   the details say so.
Samples are the first SAMPLES rows in the baseline's order, shown by `compare.samples`.
Every differing and one-sided row is kept as positions (`Mismatched`), for `--mismatches`
(compare.mismatches) to write out without comparing again.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from compare.samples import column_values, show, show_key
from compare.values import comparable, float_causes, unequal

SAMPLES = 3
_EMPTY = pa.nulls(0, pa.int64())  # (pa.array would import pandas, half a second, at import)
ROW_COLUMNS = 8  # columns shown in a sample row of a multiset comparison


@dataclass(frozen=True)
class Mismatched:
    """Every row that differs, as int64 positions in each table, in the order to write them.

    Keyed: `differs` pairs a baseline row with the other side's row of the same key (every
    pair the join made, a repeated key included) where a compared cell differs; `left_only`
    and `right_only` are the rows whose key the other side lacks (a null key never matches).
    As a multiset: no pairs; a row held n more times on one side is n positions of its first
    copy there."""

    keyed: bool
    differs: tuple[pa.Array, pa.Array]
    left_only: pa.Array
    right_only: pa.Array

    @property
    def count(self) -> int:
        return len(self.differs[0]) + len(self.left_only) + len(self.right_only)


@dataclass(frozen=True)
class RowComparison:
    equal: bool  # every compared cell equal, in the same order
    order_only: bool  # the same rows, in another order
    details: list[str]
    mismatched: Mismatched | None = None  # None when equal


def compare_rows(
    left: pa.Table,
    right: pa.Table,
    pairs: list[tuple[int, int]],
    grain: tuple[str, ...] | None,
    labels: tuple[str, str],
    why_no_grain: str = "",
) -> RowComparison:
    """Compare the columns `pairs` (left index, right index) of two tables, keyed on `grain`."""
    masks = None
    if left.num_rows == right.num_rows:
        masks = {pair: unequal(comparable(left.column(pair[0])), comparable(right.column(pair[1])))
                 for pair in pairs}  # fmt: skip
        if not any(_any(mask) for mask in masks.values()):
            return RowComparison(equal=True, order_only=False, details=[])
    key_pairs = _key_pairs(left, right, pairs, grain)
    if key_pairs is None:
        reason = why_no_grain or (f"the key {', '.join(grain)} is not in both files alike"
                                  if grain else "no key")  # fmt: skip
        return _multiset(left, right, pairs, labels, reason, masks)
    return _keyed(left, right, pairs, key_pairs, grain, labels, masks)


@dataclass(frozen=True)
class Alignment:
    """Which row of each side pairs with which: positions (None: row i with row i)."""
    rows_left: pa.Array | None
    rows_right: pa.Array | None
    complete: bool  # every row on each side pairs with exactly one row on the other
    keyed: bool


def align_rows(left: pa.Table, right: pa.Table, pairs: list[tuple[int, int]],
               grain: tuple[str, ...] | None) -> Alignment | None:
    """The rows both sides hold, paired on the grain; with no usable grain, in stored order
    when the row counts agree, else None (a multiset cannot pair its rows)."""
    key_pairs = _key_pairs(left, right, pairs, grain)
    if key_pairs is None:
        if left.num_rows != right.num_rows:
            return None
        return Alignment(None, None, complete=True, keyed=False)
    left_keys = [comparable(left.column(i)) for i, _ in key_pairs]
    right_keys = [comparable(right.column(j)) for _, j in key_pairs]
    problems = (_key_problems(left, left_keys, [i for i, _ in key_pairs], "l")
                + _key_problems(right, right_keys, [j for _, j in key_pairs], "r"))  # fmt: skip
    joined = _join(left_keys, right_keys)
    has_left, has_right = pc.is_valid(joined["l"]), pc.is_valid(joined["r"])
    both = pc.and_(has_left, has_right)
    matched = pa.table({"l": pc.filter(joined["l"], both), "r": pc.filter(joined["r"], both)})
    matched = matched.sort_by([("l", "ascending"), ("r", "ascending")])
    complete = not problems and _sum(both) == joined.num_rows
    return Alignment(_flat(matched["l"]), _flat(matched["r"]), complete=complete, keyed=True)


def _key_pairs(left, right, pairs, grain) -> list[tuple[int, int]] | None:
    if not grain:
        return None
    found = []
    for name in grain:
        if left.column_names.count(name) != 1 or right.column_names.count(name) != 1:
            return None
        pair = (left.column_names.index(name), right.column_names.index(name))
        if pair not in pairs:
            return None
        found.append(pair)
    return found


def _keyed(left, right, pairs, key_pairs, grain, labels, masks) -> RowComparison:
    details = [f"rows: {left.num_rows} vs {right.num_rows} (keyed on {', '.join(grain)})"]
    left_keys = [comparable(left.column(i)) for i, _ in key_pairs]
    right_keys = [comparable(right.column(j)) for _, j in key_pairs]
    identity = masks is not None and not any(_any(masks[pair]) for pair in key_pairs)
    problems = _key_problems(left, left_keys, [i for i, _ in key_pairs], labels[0])
    if identity:  # the same keys in the same rows: the same problems, named on both sides
        problems += [line.replace(f" in {labels[0]}, e.g.", f" in {labels[1]}, e.g.")
                     for line in problems]  # fmt: skip
    else:
        problems += _key_problems(right, right_keys, [j for _, j in key_pairs], labels[1])
    repeated = bool(problems)
    details += problems
    if identity:  # the same key in every row: row i pairs with row i, no join needed
        matched_left = matched_right = None
        left_only = right_only = pa.array([], pa.int64())
    else:
        joined = _join(left_keys, right_keys)
        has_left, has_right = pc.is_valid(joined["l"]), pc.is_valid(joined["r"])
        left_only = _sorted(pc.filter(joined["l"], pc.invert(has_right)))
        right_only = _sorted(pc.filter(joined["r"], pc.invert(has_left)))
        both = pc.and_(has_left, has_right)
        matched = pa.table({"l": pc.filter(joined["l"], both), "r": pc.filter(joined["r"], both)})
        matched = matched.sort_by([("l", "ascending"), ("r", "ascending")])
        matched_left, matched_right = matched["l"], matched["r"]
    key_columns = [i for i, _ in key_pairs], [j for _, j in key_pairs]
    sides = ((labels[0], left, key_columns[0], left_only),
             (labels[1], right, key_columns[1], right_only))  # fmt: skip
    for label, table, columns, only in sides:
        if len(only):
            shown = _keys(table, columns, only.to_pylist()[:SAMPLES])
            details.append(f"{len(only)} row(s) {label} only, e.g. {', '.join(shown)}")
    cells = []
    names = column_labels(left.column_names)
    differing = None  # per matched pair, whether any compared cell differs
    for pair in pairs:
        if pair in key_pairs:
            continue
        lines, mask = _cell_differences(left, right, pair, names[pair[0]], key_columns[0],
                                        matched_left, matched_right, masks)  # fmt: skip
        cells += lines
        if lines:
            differing = mask if differing is None else pc.or_(differing, mask)
    details += cells
    at = _EMPTY if differing is None else pc.cast(pc.indices_nonzero(_flat(differing)),
                                                   pa.int64())  # fmt: skip
    differs = ((at, at) if matched_left is None else
               (_flat(matched_left).take(at), _flat(matched_right).take(at)))  # fmt: skip
    mismatched = Mismatched(keyed=True, differs=differs, left_only=left_only,
                            right_only=right_only)  # fmt: skip
    reordered = "" if identity or repeated else _reordering(
        left, key_columns[0], matched_left, matched_right, labels)  # fmt: skip
    if reordered:
        details.append(reordered)
    order_only = bool(reordered) and not (cells or repeated or len(left_only) or len(right_only))
    return RowComparison(equal=False, order_only=order_only, details=details,
                         mismatched=mismatched)  # fmt: skip


def _key_problems(table, keys, columns, label) -> list[str]:
    lines = []
    null = pc.is_null(keys[0])
    for key in keys[1:]:
        null = pc.or_(null, pc.is_null(key))
    nulls = pc.indices_nonzero(null.combine_chunks() if isinstance(null, pa.ChunkedArray) else null)
    if len(nulls):
        shown = _keys(table, columns, nulls.to_pylist()[:SAMPLES])
        lines.append(f"{len(nulls)} row(s) with a null key in {label}, e.g. {', '.join(shown)}")
    if not len(nulls) and _ascending(keys):  # sorted on the key: repeats are neighbours
        return lines + _neighbours(table, keys, columns, label)
    names = [f"k{n}" for n in range(len(keys))]
    counted = pa.table({**dict(zip(names, keys, strict=True)),
                        "i": _positions(table.num_rows)})  # fmt: skip
    counted = counted.group_by(names, use_threads=False).aggregate([("i", "count"),
                                                                   ("i", "min")])  # fmt: skip
    repeated = counted.filter(pc.greater(counted["i_count"], 1))
    if repeated.num_rows:
        first = repeated.sort_by("i_min").slice(0, SAMPLES)
        shown = _keys(table, columns, first["i_min"].to_pylist())
        samples = ", ".join(f"{key} x{n}" for key, n in
                            zip(shown, first["i_count"].to_pylist(), strict=True))  # fmt: skip
        lines.append(f"{repeated.num_rows} key(s) duplicated in {label}, e.g. {samples}")
    return lines


def _ascending(keys: list[pa.ChunkedArray]) -> bool:
    """Whether the rows are in ascending (non-strict) order of the key columns."""
    if len(keys[0]) < 2:
        return True
    ahead = [key.slice(0, len(key) - 1) for key in keys]
    behind = [key.slice(1) for key in keys]
    in_order = pc.less_equal(ahead[-1], behind[-1])
    for a, b in zip(reversed(ahead[:-1]), reversed(behind[:-1]), strict=True):
        in_order = pc.or_(pc.less(a, b), pc.and_(pc.equal(a, b), in_order))
    return bool(pc.all(in_order).as_py())


def _neighbours(table, keys, columns, label) -> list[str]:
    """Repeated keys of a table sorted on them: rows equal to the row before."""
    same = pc.equal(keys[0].slice(1), keys[0].slice(0, len(keys[0]) - 1))
    for key in keys[1:]:
        same = pc.and_(same, pc.equal(key.slice(1), key.slice(0, len(key) - 1)))
    repeats = pc.indices_nonzero(_flat(same))
    if not len(repeats):
        return []
    starts = pc.indices_nonzero(_flat(pc.and_(same, pc.invert(pc.fill_null(_flat(_shifted(same)),
                                                                             False)))))  # fmt: skip
    first = starts.slice(0, SAMPLES).to_pylist()
    counts = [_run_length(same, start) for start in first]
    shown = _keys(table, columns, first)
    samples = ", ".join(f"{key} x{n}" for key, n in zip(shown, counts, strict=True))
    return [f"{len(starts)} key(s) duplicated in {label}, e.g. {samples}"]


def _shifted(same: pa.ChunkedArray) -> pa.Array:
    """`same` moved one row on: whether the row before was a repeat too."""
    flat = _flat(same)
    return pa.concat_arrays([pa.array([False]), flat.slice(0, len(flat) - 1)])


def _run_length(same: pa.ChunkedArray, start: int) -> int:
    flat = _flat(same)
    ends = pc.indices_nonzero(pc.invert(flat.slice(start)))
    return (ends[0].as_py() if len(ends) else len(flat) - start) + 1


def _join(left_keys, right_keys) -> pa.Table:
    names = [f"k{n}" for n in range(len(left_keys))]
    ours = pa.table({**dict(zip(names, left_keys, strict=True)),
                     "l": _positions(len(left_keys[0]))})  # fmt: skip
    theirs = pa.table({**dict(zip(names, right_keys, strict=True)),
                       "r": _positions(len(right_keys[0]))})  # fmt: skip
    return ours.join(theirs, keys=names, join_type="full outer")


def _cell_differences(left, right, pair, name, key_columns, rows_left, rows_right, masks):
    """The line naming a column's differing cells (none when equal), and its mask over the
    rows paired (row i with row i when `rows_left` is None)."""
    i, j = pair
    if rows_left is None:
        ours, theirs, mask = left.column(i), right.column(j), masks[pair]
    else:
        ours, theirs = left.column(i).take(rows_left), right.column(j).take(rows_right)
        mask = unequal(comparable(ours), comparable(theirs))
    count = _sum(mask)
    if not count:
        return [], mask
    positions = pc.indices_nonzero(_flat(mask)).slice(0, SAMPLES).to_pylist()
    at_left = positions if rows_left is None else rows_left.take(positions).to_pylist()
    at_right = positions if rows_right is None else rows_right.take(positions).to_pylist()
    keys = _keys(left, key_columns, at_left)
    a, b = column_values(left.column(i), at_left), column_values(right.column(j), at_right)
    samples = "; ".join(f"{key}: {show(x)} vs {show(y)}"
                        for key, x, y in zip(keys, a, b, strict=True))  # fmt: skip
    causes = float_causes(ours, theirs, mask)
    return [f"column {name}: {count} cell(s) differ{causes}, e.g. {samples}"], mask


def _reordering(left, key_columns, rows_left, rows_right, labels) -> str:
    if rows_right is None or len(rows_right) < 2:
        return ""
    later = pc.less(rows_right.slice(1), rows_right.slice(0, len(rows_right) - 1))
    if not _any(later):
        return ""
    at = pc.indices_nonzero(_flat(later))[0].as_py() + 1
    before, after = rows_left[at - 1].as_py(), rows_left[at].as_py()
    first, then = _keys(left, key_columns, [before, after])
    return (f"rows in another order: {then} comes after {first} in {labels[0]} (rows {before}, "
            f"{after}) but before it in {labels[1]} (rows {rows_right[at].as_py()}, "
            f"{rows_right[at - 1].as_py()})")  # fmt: skip


def _multiset(left, right, pairs, labels, reason, masks) -> RowComparison:
    details = [f"rows: {left.num_rows} vs {right.num_rows} ({reason}: compared as a multiset "
               f"of rows, give --key col1,col2 to key them)"]  # fmt: skip
    names = [f"c{n}" for n in range(len(pairs))]

    def side(table, columns, ours: bool) -> pa.Table:
        rows = _positions(table.num_rows)
        nothing = pa.nulls(table.num_rows, pa.int64())
        one, zero = (pa.repeat(pa.scalar(n, pa.int64()), table.num_rows) for n in (1, 0))
        values = {name: comparable(table.column(c)) for name, c in zip(names, columns, strict=True)}
        if ours:
            return pa.table({**values, "l": one, "r": zero, "li": rows, "ri": nothing})
        return pa.table({**values, "l": zero, "r": one, "li": nothing, "ri": rows})

    both = pa.concat_tables([side(left, [i for i, _ in pairs], True),
                             side(right, [j for _, j in pairs], False)])  # fmt: skip
    counted = both.group_by(names, use_threads=False).aggregate(
        [("l", "sum"), ("r", "sum"), ("li", "min"), ("ri", "min")]
    )
    only = []  # per side, the positions of its extra copies
    for label, table, ours, theirs, first, columns in (
        (labels[0], left, "l_sum", "r_sum", "li_min", [i for i, _ in pairs]),
        (labels[1], right, "r_sum", "l_sum", "ri_min", [j for _, j in pairs]),
    ):
        more = counted.filter(pc.greater(counted[ours], counted[theirs])).sort_by(first)
        extra = pc.subtract(more[ours], more[theirs])
        only.append(pa.array(np.repeat(_flat(more[first]).to_numpy(),
                                       _flat(extra).to_numpy()), pa.int64()))  # fmt: skip
        if more.num_rows:
            rows = more[first].slice(0, SAMPLES).to_pylist()
            shown = "; ".join(_rows(table, columns, rows))
            details.append(f"{len(only[-1])} row(s) {label} only, e.g. {shown}")
    if len(details) > 1:
        mismatched = Mismatched(keyed=False, differs=(_EMPTY, _EMPTY), left_only=only[0],
                                right_only=only[1])  # fmt: skip
        return RowComparison(equal=False, order_only=False, details=details,
                             mismatched=mismatched)  # fmt: skip
    at = min(pc.indices_nonzero(_flat(mask))[0].as_py() for mask in masks.values() if _any(mask))
    details.append(f"the same rows in another order: the first that differs is row {at}")
    return RowComparison(equal=False, order_only=True, details=details)


def _keys(table: pa.Table, columns: list[int], rows: list[int]) -> list[str]:
    values = [column_values(table.column(c), rows) for c in columns]
    return [show_key([value[n] for value in values]) for n in range(len(rows))]


def _rows(table: pa.Table, columns: list[int], rows: list[int]) -> list[str]:
    shown = columns[:ROW_COLUMNS]
    values = [column_values(table.column(c), rows) for c in shown]
    more = ", …" if len(columns) > ROW_COLUMNS else ""
    names = column_labels(table.column_names)
    return ["(" + ", ".join(f"{names[c]}={show(value[n])}"
                            for c, value in zip(shown, values, strict=True)) + more + ")"
            for n in range(len(rows))]  # fmt: skip


def column_labels(names: list[str]) -> list[str]:
    """Each column's name, with its position where the name is repeated."""
    counts = Counter(names)
    return [name if counts[name] == 1 else f"{name} (column {index + 1})"
            for index, name in enumerate(names)]  # fmt: skip


def _positions(count: int) -> pa.Array:
    return pa.array(np.arange(count, dtype=np.int64))


def _sorted(rows: pa.ChunkedArray) -> pa.Array:
    return _flat(pc.take(rows, pc.sort_indices(rows)))


def _flat(mask: pa.ChunkedArray | pa.Array) -> pa.Array:
    return mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask


def _sum(values) -> int:
    return pc.sum(pc.cast(values, pa.int64())).as_py() or 0


def _any(mask) -> bool:
    return bool(pc.any(mask).as_py())
