"""Reading the events CSV (SPEC §1): every field as text, every record numbered, nothing lost.

pyarrow's CSV reader does the parsing. Records with the wrong number of fields come back
through its `invalid_row_handler`, which in the serial reader also gives the record's number
among the non-empty records: exactly SPEC's `source_row` (plus one for the header). So the
parse runs serially, and the whole-file facts (sha256, size, UTF-8 validity) are gathered by
a second pass over the bytes in a thread beside it; both release the GIL.
"""

import codecs
import csv
import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from shared_etl.contract import REQUIRED_COLUMNS, TRIM_CHARACTERS
from shared_etl.errors import InputFileError

_CHUNK = 1 << 24  # 16 MiB: large enough for hashlib to run free of the GIL, small for memory.


@dataclass(frozen=True)
class InputFacts:
    """What the manifest records of the input file."""

    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class RawEvents:
    """The records as read: the required columns as raw, untrimmed text.

    `records` holds the well-formed records (`source_row` plus the eight required columns);
    `malformed` holds, in the same layout, the records whose field count differs from the
    header's, with the fields they have assigned by position and null where they have none.
    """

    records: pa.Table
    malformed: pa.Table
    facts: InputFacts

    @property
    def records_read(self) -> int:
        return self.records.num_rows + self.malformed.num_rows


def read_events_csv(path: str) -> RawEvents:
    """Read `path` or raise InputFileError naming the file and the problem."""
    _check_readable(path)
    with ThreadPoolExecutor(max_workers=1) as pool:
        scan = pool.submit(_scan_bytes, path)
        try:
            header = _read_header(path)
            parsed = _parse(path, header)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            scan.result()  # a UTF-8 fault is the more precise message: it raises first
            raise InputFileError(path, f"cannot be parsed as CSV: {exc}") from exc
        facts = scan.result()
    records, malformed = parsed
    return RawEvents(records=records, malformed=malformed, facts=facts)


def _check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise InputFileError(path, "no such file")
    if os.path.isdir(path):
        raise InputFileError(path, "is a directory, not a CSV file")
    if not os.access(path, os.R_OK):
        raise InputFileError(path, "permission denied")


def _scan_bytes(path: str) -> InputFacts:
    """One pass over the bytes: sha256, size, and the first byte that is not UTF-8."""
    digest = hashlib.sha256()
    size = 0
    newlines = 0
    pending = b""  # the start of a multi-byte character cut by a chunk boundary
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            data = pending + chunk
            try:
                _, consumed = codecs.utf_8_decode(data, "strict", False)
            except UnicodeDecodeError as exc:
                offset = size - len(pending) + exc.start
                line = newlines + data.count(b"\n", 0, exc.start) + 1
                raise InputFileError(
                    path,
                    f"not UTF-8: invalid byte 0x{data[exc.start]:02x} at byte offset {offset} "
                    f"(line {line})",
                ) from None
            newlines += data.count(b"\n", 0, consumed)
            pending = data[consumed:]
            size += len(chunk)
    if pending:
        raise InputFileError(
            path, f"not UTF-8: truncated character at byte offset {size - len(pending)}"
        )
    return InputFacts(sha256=digest.hexdigest(), size_bytes=size)


def _read_header(path: str) -> list[str]:
    """The header's names, trimmed as in SPEC §2, checked for the required columns."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header = next((row for row in csv.reader(handle) if row), None)
    if header is None:
        raise InputFileError(path, "no header: the file has no records at all")
    names = [name.strip(TRIM_CHARACTERS) for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise InputFileError(
            path, f"required column(s) missing from the header: {', '.join(missing)}"
        )
    duplicated = [name for name in REQUIRED_COLUMNS if names.count(name) > 1]
    if duplicated:
        raise InputFileError(
            path, f"required column(s) duplicated in the header: {', '.join(duplicated)}"
        )
    return names


def _parse(path: str, header: list[str]) -> tuple[pa.Table, pa.Table]:
    width = len(header)
    positions = {name: header.index(name) for name in REQUIRED_COLUMNS}
    generated = [f"f{i}" for i in range(width)]
    bad_rows: list[tuple[int, str]] = []

    def keep_invalid(row: pacsv.InvalidRow) -> str:
        bad_rows.append((row.number - 1, row.text))  # number counts the header as 1
        return "skip"

    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(
            column_names=generated, use_threads=False, block_size=1 << 24
        ),
        parse_options=pacsv.ParseOptions(
            newlines_in_values=True,
            ignore_empty_lines=True,
            invalid_row_handler=keep_invalid,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={generated[i]: pa.string() for i in positions.values()},
            include_columns=[generated[positions[name]] for name in REQUIRED_COLUMNS],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    table = table.slice(1).rename_columns(list(REQUIRED_COLUMNS))  # row 0 is the header
    records_read = table.num_rows + len(bad_rows)
    is_good = np.ones(records_read, dtype=bool)
    bad_numbers = np.fromiter(
        (number for number, _ in bad_rows), dtype=np.int64, count=len(bad_rows)
    )
    is_good[bad_numbers - 1] = False
    source_row = np.arange(1, records_read + 1, dtype=np.int64)
    records = table.add_column(0, "source_row", pa.array(source_row[is_good]))
    return records, _malformed_table(bad_rows, positions)


def _malformed_table(bad_rows: list[tuple[int, str]], positions: dict[str, int]) -> pa.Table:
    columns: dict[str, list] = {"source_row": [], **{name: [] for name in REQUIRED_COLUMNS}}
    for number, text in bad_rows:
        fields = next(csv.reader(io.StringIO(text, newline="")), [])
        columns["source_row"].append(number)
        for name, index in positions.items():
            columns[name].append(fields[index] if index < len(fields) else None)
    return pa.table(
        {
            "source_row": pa.array(columns["source_row"], pa.int64()),
            **{name: pa.array(columns[name], pa.string()) for name in REQUIRED_COLUMNS},
        }
    )
