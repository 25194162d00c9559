"""Cells made comparable in Arrow compute, strictly: equal means the same value, bit for bit.

`comparable` turns a column into a form in which `==`, a join and a group-by all mean "the
same value": dictionary-encoded columns become their values; floats become their bits (so
-0.0 and 0.0 differ) with every NaN made one NaN (so NaN equals NaN); nested values, which
Arrow's kernels cannot compare, become their JSON text. Null stays null, and `unequal`
counts null against a value as a difference and null against null as none.
"""

import json

import pyarrow as pa
import pyarrow.compute as pc

_BITS = {16: pa.int16(), 32: pa.int32(), 64: pa.int64()}


def value_type(kind: pa.DataType) -> pa.DataType:
    """The type whose values a column holds: a dictionary's value type, else the type."""
    return kind.value_type if pa.types.is_dictionary(kind) else kind


def decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary-encoded column as its plain values; any other column as it is."""
    if not pa.types.is_dictionary(column.type):
        return column
    chunks = [chunk.dictionary_decode() for chunk in column.chunks]
    return pa.chunked_array(chunks, type=column.type.value_type)


def comparable(column: pa.ChunkedArray) -> pa.ChunkedArray:
    column = decoded(column)
    kind = column.type
    if pa.types.is_floating(kind):
        bits = _BITS[kind.bit_width]
        nan = pa.array([float("nan")], kind).view(bits)[0]
        chunks = [pc.if_else(pc.is_nan(chunk), nan, chunk.view(bits)) for chunk in column.chunks]
        return pa.chunked_array(chunks, type=bits)
    if pa.types.is_nested(kind) or isinstance(kind, pa.ExtensionType):
        text = [None if value is None else json.dumps(value, default=repr)
                for value in column.to_pylist()]  # fmt: skip
        return pa.chunked_array([pa.array(text, pa.string())], type=pa.string())
    return column


def unequal(left: pa.ChunkedArray, right: pa.ChunkedArray) -> pa.ChunkedArray:
    """Per row, whether two comparable columns of one length hold different cells."""
    both_null = pc.and_(pc.is_null(left), pc.is_null(right))
    same = pc.fill_null(pc.equal(left, right), False)
    return pc.invert(pc.or_(same, both_null))


def float_causes(left: pa.ChunkedArray, right: pa.ChunkedArray, differ: pa.ChunkedArray) -> str:
    """What the differing float cells are, when it is not plain arithmetic: NaN against
    null, or -0.0 against 0.0 (equal as numbers, not as bits)."""
    if not pa.types.is_floating(value_type(left.type)):
        return ""
    left, right = decoded(left), decoded(right)
    left_nan, right_nan = (pc.fill_null(pc.is_nan(side), False) for side in (left, right))
    nan_null = pc.or_(pc.and_(left_nan, pc.is_null(right)), pc.and_(pc.is_null(left), right_nan))
    zero = pc.fill_null(pc.and_(differ, pc.equal(left, right)), False)
    notes = []
    for count, name in ((_count(nan_null), "NaN vs null"), (_count(zero), "-0.0 vs 0.0")):
        if count:
            notes.append(f"{count:,} {name}")
    return f" ({'; '.join(notes)})" if notes else ""


def _count(mask: pa.ChunkedArray) -> int:
    return pc.sum(pc.cast(pc.fill_null(mask, False), pa.int64())).as_py() or 0
