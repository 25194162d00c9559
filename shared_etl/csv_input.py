"""Reading the events CSV (SPEC §1): every field as text, every record numbered, nothing lost.

pyarrow's streaming CSV reader does the parsing, one block at a time. Records with the
wrong number of fields come back through its `invalid_row_handler`, which in the serial
reader also gives the record's number among the non-empty records: exactly SPEC's
`source_row` (plus one for the header). The whole-file facts (sha256, size, UTF-8 validity)
come from a second pass over the bytes in a thread beside it; both release the GIL.
"""

import codecs
import csv
import hashlib
import io
import os
from collections.abc import Callable
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
class CsvSummary:
    """What is known once the whole file is read.

    `malformed` holds the records whose field count differs from the header's: `source_row`
    and the eight required columns, the fields they have assigned by header position and
    null where they have none. `well_formed_source_rows` numbers the records passed to
    `on_batch`, in the order they were passed.
    """

    records_read: int
    malformed: pa.Table
    well_formed_source_rows: np.ndarray
    facts: InputFacts


def read_events_csv(path: str, on_batch: Callable[[pa.Table], None]) -> CsvSummary:
    """Stream the well-formed records of `path` to `on_batch` (raw text, required columns).

    Streaming keeps memory to one block of raw text at a time. Raises InputFileError naming
    the file and the problem; `on_batch` may have seen part of the file by then.
    """
    _check_readable(path)
    with ThreadPoolExecutor(max_workers=1) as pool:
        scan = pool.submit(_scan_bytes, path)
        try:
            header = _read_header(path)
            well_formed, bad_rows = _parse(path, header, on_batch)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            scan.result()  # a UTF-8 fault is the more precise message: it raises first
            raise InputFileError(path, f"cannot be parsed as CSV: {exc}") from exc
        facts = scan.result()
    records_read = well_formed + len(bad_rows)
    is_good = np.ones(records_read, dtype=bool)
    is_good[np.array([number for number, _ in bad_rows], dtype=np.int64) - 1] = False
    return CsvSummary(
        records_read=records_read,
        malformed=_malformed_table(bad_rows, header),
        well_formed_source_rows=np.flatnonzero(is_good) + 1,
        facts=facts,
    )


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


def _parse(
    path: str, header: list[str], on_batch: Callable[[pa.Table], None]
) -> tuple[int, list[tuple[int, str]]]:
    """Feed the well-formed records to `on_batch`; return their count and the malformed ones.

    The reader is serial, so `InvalidRow.number` is known: the record's number among the
    non-empty records, counting the header as 1.
    """
    generated = [f"f{i}" for i in range(len(header))]
    wanted = [generated[header.index(name)] for name in REQUIRED_COLUMNS]
    bad_rows: list[tuple[int, str]] = []

    def keep_invalid(row: pacsv.InvalidRow) -> str:
        bad_rows.append((row.number - 1, row.text))
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            column_names=generated, use_threads=False, block_size=_CHUNK
        ),
        parse_options=pacsv.ParseOptions(
            newlines_in_values=True, ignore_empty_lines=True, invalid_row_handler=keep_invalid
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(wanted, pa.string()),
            include_columns=wanted,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    well_formed = 0
    is_header = True
    for batch in reader:
        if is_header:  # the header is the first row: its names were checked already
            batch, is_header = batch.slice(1), False
        if batch.num_rows:
            on_batch(pa.Table.from_batches([batch]).rename_columns(list(REQUIRED_COLUMNS)))
            well_formed += batch.num_rows
    return well_formed, bad_rows


def _malformed_table(bad_rows: list[tuple[int, str]], header: list[str]) -> pa.Table:
    positions = {name: header.index(name) for name in REQUIRED_COLUMNS}
    columns: dict[str, list] = {name: [] for name in REQUIRED_COLUMNS}
    for _, text in bad_rows:
        fields = next(csv.reader(io.StringIO(text, newline="")), [])
        for name, index in positions.items():
            columns[name].append(fields[index] if index < len(fields) else None)
    return pa.table(
        {
            "source_row": pa.array([number for number, _ in bad_rows], pa.int64()),
            **{name: pa.array(columns[name], pa.string()) for name in REQUIRED_COLUMNS},
        }
    )
