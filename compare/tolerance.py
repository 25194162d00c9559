"""Opt-in tolerances, a second verdict beside the strict one: *equal within tolerance*.

They apply only to float and decimal columns whose cells differ, in the rows both sides
hold (paired on the grain, or in stored order with no grain and equal row counts): a
differing cell is within tolerance when both values are finite and
|a - b| <= atol + rtol * max(|a|, |b|). NaN against NaN is already equal; NaN against a
number, an infinity against another value, and null against a value never are. Any other
difference (a one-sided row, a duplicated key, an int or string cell) is beyond every
tolerance. Everything is Arrow compute: no Python object per row.

Also the statistics of each column with differing cells: how many, the largest absolute
difference (numeric columns), the nulls on each side among them, and both types.
"""

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from compare.row_diff import align_rows
from compare.values import comparable, decoded, unequal, value_type

LOOSE_RTOL = 1e-6


@dataclass(frozen=True)
class Tolerances:
    rtol: float = 0.0
    atol: float = 0.0
    columns: dict[str, dict[str, float]] = field(default_factory=dict)  # name: {rtol, atol}

    @property
    def given(self) -> bool:
        return bool(self.rtol or self.atol or self.columns)

    def of(self, name: str) -> tuple[float, float]:
        """(rtol, atol) of a column: its own --tolerance entries, else --rtol/--atol."""
        own = self.columns.get(name)
        if own is None:
            return self.rtol, self.atol
        return own.get("rtol", 0.0), own.get("atol", 0.0)

    def describe(self) -> dict:
        return {"rtol": self.rtol, "atol": self.atol, "columns": self.columns}

    def warnings(self) -> list[str]:
        loose = [("--rtol", self.rtol)] + [(f"--tolerance {name}=rtol", own["rtol"])
                                          for name, own in self.columns.items() if "rtol" in own]
        return [f"warning: {flag} {value:g} is loose (above {LOOSE_RTOL:g}): differences that "
                f"large may be real changes, not floating-point noise"
                for flag, value in loose if value > LOOSE_RTOL]  # fmt: skip


def _numeric(kind: pa.DataType) -> bool:
    kind = value_type(kind)
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def _tolerable(kind: pa.DataType) -> bool:
    kind = value_type(kind)
    return pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def _count(mask) -> int:
    return pc.sum(pc.cast(pc.fill_null(mask, False), pa.int64())).as_py() or 0


def _as_float(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.cast(decoded(column), pa.float64())


def examine(left: pa.Table, right: pa.Table, pairs: list[tuple[int, int]],
            grain: tuple[str, ...] | None, tolerances: Tolerances) -> dict:
    """{"columns": [stats of each column with differing cells], "within": bool | None}:
    within is None when no tolerance is given, False when rows cannot be paired."""
    alignment = align_rows(left, right, pairs, grain)
    within = tolerances.given
    if alignment is None:
        return {"columns": [], "within": False if within else None,
                "paired": "not paired: no key and other row counts"}  # fmt: skip
    within = within and alignment.complete
    keys = set(grain or ()) if alignment.keyed else set()
    stats = []
    for i, j in pairs:
        name = left.column_names[i]
        if name in keys:
            continue
        ours, theirs = left.column(i), right.column(j)
        if alignment.rows_left is not None:
            ours, theirs = ours.take(alignment.rows_left), theirs.take(alignment.rows_right)
        differ = unequal(comparable(ours), comparable(theirs))
        count = _count(differ)
        if not count:
            continue
        a, b = pc.filter(ours, differ), pc.filter(theirs, differ)
        entry = {"column": name, "unequal": count,
                 "nulls": [a.null_count, b.null_count],
                 "types": [str(ours.type), str(theirs.type)]}  # fmt: skip
        if _numeric(ours.type) and _numeric(theirs.type):
            x, y = _as_float(a), _as_float(b)
            gap = pc.abs(pc.subtract(x, y))
            entry["max_abs_diff"] = pc.max(gap).as_py()  # over cells with both values
        if tolerances.given:
            rtol, atol = tolerances.of(name)
            ok = False
            if _tolerable(ours.type) and _tolerable(theirs.type) and (rtol or atol):
                x, y = _as_float(a), _as_float(b)
                bound = pc.add(pa.scalar(atol), pc.multiply(
                    pa.scalar(rtol), pc.max_element_wise(pc.abs(x), pc.abs(y))))  # fmt: skip
                cell = pc.and_(pc.and_(pc.is_finite(x), pc.is_finite(y)),
                               pc.less_equal(pc.abs(pc.subtract(x, y)), bound))  # fmt: skip
                ok = _count(cell) == count
            entry["tolerance"] = {"rtol": rtol, "atol": atol, "within": ok}
            within = within and ok
        stats.append(entry)
    return {"columns": stats, "within": within if tolerances.given else None}


def stat_line(entry: dict) -> str:
    """One compact line of a column's statistics, for the console and the Markdown."""
    types = entry["types"][0] if entry["types"][0] == entry["types"][1] else \
        f"{entry['types'][0]} vs {entry['types'][1]}"  # fmt: skip
    gap = f", max |diff| {entry['max_abs_diff']:.6g}" if entry.get("max_abs_diff") is not None \
        else ""  # fmt: skip
    line = (f"stats {entry['column']}: {entry['unequal']} unequal{gap}, nulls "
            f"{entry['nulls'][0]} vs {entry['nulls'][1]}, {types}")
    tolerance = entry.get("tolerance")
    if tolerance:
        verdict = "within" if tolerance["within"] else "beyond"
        line += (f"; {verdict} tolerance (rtol {tolerance['rtol']:g}, "
                 f"atol {tolerance['atol']:g})")
    return line
