"""Reading the events CSV (contract §1): every field as text, every record numbered, nothing lost.

pyarrow's streaming CSV reader does the parsing, one block at a time, from a `CheckedStream`
(input_file.py) that hashes, counts and checks as UTF-8 the very bytes it hands over: the
input facts describe exactly what was parsed (contract §9). Records with the wrong number of
fields come back through its `invalid_row_handler`, which in the serial reader also gives the
record's number among the non-empty records: exactly the contract's `source_row` (plus one for the
header).

pyarrow needs every record to fit in its blocks. A record larger than a block (contract §9: a
field of many megabytes is still a record) makes the reader start again from the first byte
with blocks four times larger, dropping what the abandoned pass gave; `on_batch` returns its
result rather than keep it, so nothing of that pass survives.
"""

import csv
import io
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from shared_etl.contract import REQUIRED_COLUMNS, TRIM_CHARACTERS
from shared_etl.errors import InputFileError
from shared_etl.input_file import CheckedStream, InputFacts, InputFile
from shared_etl.input_hints import delimiter_hint

_BLOCK = 1 << 23  # 8 MiB: large enough for hashlib to run free of the GIL, small for memory.
_LARGEST_BLOCK = 1 << 30  # pyarrow's block size is a 32-bit int; a record up to 1 GiB is read.
_HEADER_WINDOW = 1 << 16  # the header is looked for in the first 64 KiB, then in 4x more.
_CSV_FIELD_LIMIT_MAX = (1 << 31) - 1  # what csv.field_size_limit takes on every platform
_WORKERS = 2  # blocks validated at once, beside the parse: one per core of the bench machine

BlockResult = TypeVar("BlockResult")


@dataclass(frozen=True)
class CsvSummary(Generic[BlockResult]):
    """What is known once the whole file is read.

    `blocks` holds what `on_batch` returned for each block of well-formed records, in file
    order. `malformed` holds the records whose field count differs from the header's:
    `source_row` and the eight required columns, the fields they have assigned by header
    position and null where they have none. `well_formed_source_rows` numbers the records
    passed to `on_batch`, in the order they were passed.
    """

    records_read: int
    malformed: pa.Table
    well_formed_source_rows: np.ndarray
    facts: InputFacts
    blocks: list[BlockResult]


class _RecordLargerThanBlock(Exception):
    """pyarrow met a record that does not fit in its blocks."""


def read_events_csv(
    path: str, on_batch: Callable[[pa.Table], BlockResult]
) -> CsvSummary[BlockResult]:
    """Stream the well-formed records of `path` (raw text, required columns) to `on_batch`.

    Streaming keeps memory to the blocks of raw text pyarrow holds (it reads up to 32 blocks
    ahead of the parser). Raises InputFileError naming the file and the problem.
    """
    with InputFile(path) as source:
        block_size = _BLOCK
        while True:
            try:
                return _read_pass(source.new_pass(block_size), path, on_batch)
            except _RecordLargerThanBlock:
                if block_size >= _LARGEST_BLOCK:
                    raise InputFileError(
                        path, f"cannot be parsed as CSV: a record is larger than {block_size} bytes"
                    ) from None
                if not source.can_reread:
                    raise InputFileError(
                        path,
                        f"cannot be parsed as CSV: a record is larger than {block_size} bytes, "
                        "and the input is not a regular file that can be read again",
                    ) from None
                block_size *= 4


def _read_pass(
    stream: CheckedStream,
    path: str,
    on_batch: Callable[[pa.Table], BlockResult],
) -> CsvSummary[BlockResult]:
    header = _read_header(stream, path)
    try:
        blocks, well_formed, bad_rows = _parse(stream, header, on_batch)
    except pa.ArrowInvalid as exc:
        if "straddl" in str(exc):  # "straddling object straddles two block boundaries"
            raise _RecordLargerThanBlock from exc
        raise InputFileError(path, f"cannot be parsed as CSV: {exc}") from exc
    facts = stream.facts()
    records_read = well_formed + len(bad_rows)
    is_good = np.ones(records_read, dtype=bool)
    is_good[np.array([number for number, _ in bad_rows], dtype=np.int64) - 1] = False
    return CsvSummary(
        records_read=records_read,
        malformed=_malformed_table(bad_rows, header, records_read, stream.line_end),
        well_formed_source_rows=np.flatnonzero(is_good) + 1,
        facts=facts,
        blocks=blocks,
    )


def _read_header(stream: CheckedStream, path: str) -> list[str]:
    """The header's names, trimmed as in contract §2, checked for the required columns.

    The header is parsed from bytes peeked at in the stream, which hands them on to pyarrow
    after, in a window that grows until it holds the whole first record: a header name of
    any size.
    """
    window = _HEADER_WINDOW
    while True:
        ahead = stream.peek(window)
        text = ahead.decode("utf-8", "ignore")  # checked already; drops a cut last character
        text = text.removeprefix("\ufeff")
        lines = io.StringIO(text, newline="")
        _allow_csv_fields_of(len(text))
        header = next((row for row in csv.reader(lines) if row), None)
        if lines.tell() < len(text) or len(ahead) < window:  # the record ended, or the file
            break
        window *= 4
    if header is None:
        raise InputFileError(path, "no header: the file has no records at all")
    names = [name.strip(TRIM_CHARACTERS) for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        hint = delimiter_hint(header)
        raise InputFileError(
            path, f"required column(s) missing from the header: {', '.join(missing)}"
            + (f" ({hint})" if hint else "")
        )
    duplicated = [name for name in REQUIRED_COLUMNS if names.count(name) > 1]
    if duplicated:
        raise InputFileError(
            path, f"required column(s) duplicated in the header: {', '.join(duplicated)}"
        )
    return names


def _parse(
    stream: CheckedStream,
    header: list[str],
    on_batch: Callable[[pa.Table], BlockResult],
) -> tuple[list[BlockResult], int, list[tuple[int, str]]]:
    """Feed the well-formed records to `on_batch`; return its results, their count, and the
    malformed records.

    The reader is serial, so `InvalidRow.number` is known: the record's number among the
    non-empty records, counting the header as 1. `on_batch` runs on worker threads while
    the reader parses the next blocks (Arrow and numpy work free of the GIL); results are
    taken in file order, and at most `_WORKERS` blocks wait beyond the one being parsed.
    """
    generated = [f"f{i}" for i in range(len(header))]
    wanted = [generated[header.index(name)] for name in REQUIRED_COLUMNS]
    bad_rows: list[tuple[int, str]] = []

    def keep_invalid(row: pacsv.InvalidRow) -> str:
        bad_rows.append((row.number - 1, row.text))
        return "skip"

    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(
            column_names=generated, use_threads=False, block_size=stream.block_size
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
    blocks: list[BlockResult] = []
    well_formed = 0
    is_header = True
    pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="on_batch")
    pending: deque[Future[BlockResult]] = deque()
    try:
        for batch in reader:
            if is_header:  # the header is the first row: its names were checked already
                batch, is_header = batch.slice(1), False
            if batch.num_rows:
                records = pa.Table.from_batches([batch]).rename_columns(list(REQUIRED_COLUMNS))
                pending.append(pool.submit(on_batch, records))
                well_formed += batch.num_rows
            while len(pending) > _WORKERS:  # a bounded number of blocks in flight
                blocks.append(pending.popleft().result())
        blocks.extend(future.result() for future in pending)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # an abandoned pass keeps nothing
    return blocks, well_formed, bad_rows


def _malformed_table(
    bad_rows: list[tuple[int, str]], header: list[str], last_record: int, line_end: str
) -> pa.Table:
    """The malformed records split into fields, raw.

    pyarrow's text of a record leaves out its line end; for the file's last record that is
    the file's last line end, which belongs to the record when a quote is still open there
    (the contract: raw text exactly as in the file), and ends it harmlessly otherwise.
    """
    positions = {name: header.index(name) for name in REQUIRED_COLUMNS}
    columns: dict[str, list] = {name: [] for name in REQUIRED_COLUMNS}
    for number, text in bad_rows:
        if number == last_record:
            text += line_end
        _allow_csv_fields_of(len(text))
        fields = next(csv.reader(io.StringIO(text, newline="")), [])
        for name, index in positions.items():
            columns[name].append(fields[index] if index < len(fields) else None)
    return pa.table(
        {
            "source_row": pa.array([number for number, _ in bad_rows], pa.int64()),
            **{name: pa.array(columns[name], pa.string()) for name in REQUIRED_COLUMNS},
        }
    )


def _allow_csv_fields_of(length: int) -> None:
    """Let Python's csv read a field of `length` characters.

    Its limit (128 KiB by default) is process-wide; it only ever grows here, to the size of
    the text at hand, so no other reader in the process loses a field it would have read.
    """
    if csv.field_size_limit() < length:
        csv.field_size_limit(min(length, _CSV_FIELD_LIMIT_MAX))
