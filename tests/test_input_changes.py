"""Contract §9: the manifest's input facts describe exactly the bytes that were parsed.

A file that changes while a run reads it (truncated, appended to, rewritten in place) fails
the run with one line naming it, rather than count records of one version of the file and
hash another. The change is made from inside the reader's own consumer, after the first
block of a file of several blocks was parsed: the run is mid-read, every time.
"""

import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from shared_etl.csv_input import read_events_csv
from shared_etl.errors import InputFileError
from tests.conftest import HEADER, csv_line

RECORDS = 600_000  # about 45 MB: several of the reader's 8 MiB blocks


@pytest.fixture(scope="module")
def big_csv_bytes() -> bytes:
    record = (csv_line(event_id="e", session_id="s") + "\n").encode()
    return (HEADER + "\n").encode() + record * RECORDS


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _append(path: Path) -> None:
    with path.open("ab") as handle:
        handle.write((csv_line(event_id="late") + "\n").encode())


def _rewrite_last_record(path: Path) -> None:
    size = path.stat().st_size
    record = (csv_line(event_id="e", session_id="s") + "\n").encode()
    with path.open("r+b") as handle:
        handle.seek(size - len(record))
        handle.write(record.replace(b"e,", b"x,", 1))


@pytest.mark.parametrize(
    "change",
    [_truncate, _append, _rewrite_last_record],
    ids=["truncated", "appended", "rewritten-in-place"],
)
def test_a_file_changed_while_it_is_read_fails_naming_it(
    tmp_path: Path, big_csv_bytes: bytes, change: Callable[[Path], None]
):
    path = tmp_path / "events.csv"
    path.write_bytes(big_csv_bytes)
    # The file's mtime is set well in the past, so a rewrite of the same size shows in it
    # even when the clock has not ticked since the file was written.
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    blocks_seen = 0

    def change_after_first_block(records: pa.Table) -> int:
        nonlocal blocks_seen
        blocks_seen += 1
        if blocks_seen == 1:
            change(path)
        return records.num_rows

    with pytest.raises(InputFileError) as caught:
        read_events_csv(str(path), change_after_first_block)
    assert str(path) in str(caught.value)
    assert "changed while it was read" in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1
