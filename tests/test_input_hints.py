"""Whole-file errors that guess their cause say so in the same one line: a compressed or
binary file, UTF-16, another delimiter. Files are made by the real tools' Python modules."""

import bz2
import gzip
import lzma
import zipfile
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, run_reference

CSV = b"".join(SAMPLE.read_bytes().splitlines(keepends=True)[:40])


def _zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("events.csv", CSV)


MADE = {
    "gzip": (lambda path: path.write_bytes(gzip.compress(CSV, mtime=0)),
             "it looks gzip-compressed: gunzip it first"),
    "bzip2": (lambda path: path.write_bytes(bz2.compress(CSV)),
              "it looks bzip2-compressed: bunzip2 it first"),
    "xz": (lambda path: path.write_bytes(lzma.compress(CSV)),
           "it looks xz-compressed: unxz it first"),
    "zip": (_zip, "it looks like a zip archive (an .xlsx workbook is one): unzip it, or export "
                  "the sheet as CSV (UTF-8)"),
    "xls": (lambda path: path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500)),
            "it looks like an Excel .xls workbook: export the sheet as CSV (UTF-8)"),
    "utf16": (lambda path: path.write_bytes(CSV.decode().encode("utf-16")),
              "it starts with a UTF-16 byte-order mark: save it as UTF-8"),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(MADE))
def test_a_compressed_or_binary_input_is_named_in_its_one_line(tmp_path, kind):
    make_file, hint = MADE[kind]
    path = tmp_path / f"events.{kind}.csv"
    make_file(path)
    result = run_reference("--input-path", str(path), "--output-path", str(tmp_path / "o.parquet"))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: step 'validated': {path}: not UTF-8: invalid byte ")
    assert line.endswith(f" ({hint})")


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_a_header_of_one_field_holding_another_delimiter_says_so(tmp_path, delimiter, name):
    path = tmp_path / "events.csv"
    path.write_bytes(CSV.replace(b",", delimiter.encode()))
    result = run_reference("--input-path", str(path), "--output-path", str(tmp_path / "o.parquet"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: step 'validated': {path}: required column(s) missing from the header: "
        f"event_id, event_ts, user_id, session_id, event_type, amount, currency, country "
        f"(the header is one field "
        f"holding {delimiter!r}: the file looks {name}-delimited; the input must be "
        "comma-separated)"
    ]


def test_a_header_merely_missing_a_column_gets_no_guess(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("event_id,event_ts\ne1,2024-01-01T00:00:00Z\n")
    result = run_reference("--input-path", str(path), "--output-path", str(tmp_path / "o.parquet"))
    assert result.stderr.splitlines() == [
        f"error: step 'validated': {path}: required column(s) missing from the header: "
        "user_id, session_id, event_type, amount, currency, country"
    ]
