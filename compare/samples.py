"""Values shown in a report, made safe: bounded, and different when the values differ.

A sample is `repr`-like (so strings are quoted and control characters escaped) with, on top,
every combining mark and every character Python's `repr` leaves unescaped but that prints as
nothing (format characters, unassigned code points, separators) written as `\\uXXXX`: NFC `é`
and NFD `e\\u0301` look different. Each value is cut at MAX_CHARS characters, and the cut is
named, so one 10 MB cell cannot flood a console, a job summary or a JSON report.
"""

import unicodedata

import pyarrow as pa

MAX_CHARS = 200


def show(value: object) -> str:
    """One value as a report shows it: at most MAX_CHARS characters and a note of the cut."""
    if isinstance(value, _Raw):
        return str(value)
    size = len(value) if isinstance(value, str | bytes) else None
    head = value[: MAX_CHARS + 1] if size is not None else value
    text = _escape(repr(head))
    if (size is not None and size > MAX_CHARS) or len(text) > MAX_CHARS:
        whole = f"{size:,} characters" if isinstance(value, str) else None
        whole = whole or (f"{size:,} bytes" if isinstance(value, bytes) else "cut")
        return f"{text[:MAX_CHARS]}…({whole})"
    return text


def show_key(values: list[object]) -> str:
    """A key as a tuple of its values' text: `('2024-01-01', 'US', 'view')`."""
    shown = [show(value if isinstance(value, str) else str(value)) for value in values]
    # (a _Raw placeholder is a str, shown unquoted)
    return "(" + ", ".join(shown) + ("," if len(shown) == 1 else "") + ")"


def column_values(column: pa.ChunkedArray | pa.Array, rows: list[int]) -> list[object]:
    """The Python values of `column` at `rows`, or, where Python has none (a date before year
    1, a timestamp out of range), a text naming the Arrow type and the stored number."""
    picked = column.take(pa.array(rows, pa.int64()))
    try:
        return picked.to_pylist()
    except (ValueError, OverflowError, pa.ArrowException):
        return [_raw(picked[i]) for i in range(len(picked))]


def _raw(scalar: pa.Scalar) -> object:
    try:
        return scalar.as_py()
    except (ValueError, OverflowError, pa.ArrowException):
        pass
    kind = scalar.type
    if pa.types.is_temporal(kind) and scalar.is_valid:
        width = kind.bit_width
        number = pa.array([scalar], kind).view(pa.int32() if width == 32 else pa.int64())[0]
        return _Raw(f"<{kind} stored as {number.as_py()}, beyond Python's range>")
    return _Raw(f"<{kind} value Python cannot hold>")


class _Raw(str):
    """A placeholder text shown as is, not quoted like a string value."""

    def __repr__(self) -> str:
        return str(self)


def _escape(text: str) -> str:
    if text.isascii():
        return text
    return "".join(_escaped(char) if _invisible(char) else char for char in text)


def _escaped(char: str) -> str:
    return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"


def _invisible(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "MCZ" and char != " "
