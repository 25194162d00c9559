"""Contract §1: reading the file, numbering records, and the whole-file errors."""

from pathlib import Path

import pytest

from shared_etl.contract import REQUIRED_COLUMNS
from shared_etl.errors import InputFileError
from tests.conftest import HEADER, csv_line, read_raw, run_reference


def test_blank_lines_are_no_records_and_quoted_newlines_stay_in_one_record(write_csv, prepare_file):
    path = write_csv(
        [
            csv_line(event_id="a"),
            "",
            csv_line(event_id="b", session_id="two\nlines, and a comma"),
            "",
            "",
            csv_line(event_id="c", event_ts="bad"),
        ]
    )
    prepared = prepare_file(path)
    assert prepared.records_read == 3
    assert prepared.rejects.column("source_row").to_pylist() == [3]
    assert prepared.kept.column("session_id").to_pylist()[1] == "two\nlines, and a comma"


def test_crlf_line_ends_and_a_leading_bom_are_read_like_lf(write_csv, prepare_file):
    path = write_csv([csv_line(event_id="a"), csv_line(event_id="b", country="x")], newline="\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    prepared = prepare_file(path)
    assert prepared.records_read == 2
    assert prepared.kept.column("country").to_pylist() == ["US"]
    assert prepared.rejects.column("country").to_pylist() == ["x"]


def test_header_names_are_trimmed_and_matched_in_any_order_with_extra_columns_ignored(write_csv):
    header = " country ,device,\tevent_type,amount,currency,session_id,user_id,event_ts,event_id"
    path = write_csv(["us,web,VIEW,,,s1,7,2024-01-01T00:00:00Z,e1"], header=header)
    records, _ = read_raw(path)
    row = records.to_pylist()[0]
    assert row == {
        "source_row": 1,
        "event_id": "e1",
        "event_ts": "2024-01-01T00:00:00Z",
        "user_id": "7",
        "session_id": "s1",
        "event_type": "VIEW",
        "amount": "",
        "currency": "",
        "country": "us",
    }


def test_malformed_records_keep_the_fields_they_have_by_header_position(write_csv, prepare_file):
    path = write_csv(
        [
            csv_line(event_id="ok"),
            'short,"2024-01-01T00:00:00Z",5',
            csv_line(event_id="long") + ',"extra, field"',
            "   ",
        ]
    )
    rejects = prepare_file(path).rejects.to_pylist()
    assert [(r["source_row"], r["reject_reason"]) for r in rejects] == [
        (2, "malformed_record"),
        (3, "malformed_record"),
        (4, "malformed_record"),
    ]
    short = rejects[0]
    assert (short["event_id"], short["event_ts"], short["user_id"]) == (
        "short",
        "2024-01-01T00:00:00Z",
        "5",
    )
    assert all(short[name] is None for name in REQUIRED_COLUMNS[3:])
    assert rejects[1]["event_id"] == "long" and rejects[1]["country"] == "US"
    assert rejects[2]["event_id"] == "   " and rejects[2]["event_ts"] is None


def test_source_row_counts_records_not_lines_across_many_blocks(write_csv, prepare_file):
    lines = []
    for number in range(1, 30_001):
        if number % 997 == 0:
            lines.append("broken,record")
        elif number % 1009 == 0:
            lines.append(csv_line(event_id=f"e{number}", user_id="x"))
        else:
            lines.append(csv_line(event_id=f"e{number}", session_id=f"s\n{number}"))
        if number % 500 == 0:
            lines.append("")
    rejects = prepare_file(write_csv(lines)).rejects
    expected = sorted(
        [n for n in range(1, 30_001) if n % 997 == 0]
        + [n for n in range(1, 30_001) if n % 1009 == 0 and n % 997 != 0]
    )
    assert rejects.column("source_row").to_pylist() == expected


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "no header"),
        (b"\n\n\n", "no header"),
        (HEADER.replace("currency,", "").encode() + b"\n", "missing from the header: currency"),
        ((HEADER + ",user_id").encode() + b"\n", "duplicated in the header: user_id"),
        ((HEADER + "\ne1,2024-01-01T00:00:00Z,1,s1,vi\xe9w,,,US\n").encode("latin-1"), "not UTF-8"),
    ],
    ids=["empty-file", "blank-lines-only", "missing-column", "duplicated-column", "latin-1"],
)
def test_whole_file_errors_name_the_file_and_the_problem_and_write_nothing(
    tmp_path: Path, content: bytes, problem: str
):
    source = tmp_path / "events.csv"
    source.write_bytes(content)
    output = tmp_path / "out" / "metrics.parquet"
    result = run_reference("--input-path", str(source), "--output-path", str(output))
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert str(source) in message and problem in message
    assert not output.parent.exists() or list(output.parent.iterdir()) == []


def test_not_utf8_names_the_byte_offset_and_the_line(write_csv):
    path = write_csv([csv_line(event_id="a"), csv_line(event_id="b")])
    data = path.read_bytes()
    bad_at = data.index(b"\nb,") + 1
    path.write_bytes(data[:bad_at] + b"\xff" + data[bad_at + 1 :])
    with pytest.raises(InputFileError) as caught:
        read_raw(path)
    assert f"byte offset {bad_at}" in str(caught.value)
    assert "(line 3)" in str(caught.value)
    assert "0xff" in str(caught.value)


def test_a_bad_byte_in_an_ignored_column_still_fails_the_file(tmp_path: Path):
    path = tmp_path / "events.csv"
    path.write_bytes((HEADER + ",device\n" + csv_line() + ",caf").encode() + b"\xe9\n")
    with pytest.raises(InputFileError, match="not UTF-8"):
        read_raw(path)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_input_is_a_whole_file_error(tmp_path: Path, kind: str):
    path = tmp_path / "events.csv"
    if kind == "directory":
        path.mkdir()
    output = tmp_path / "out.parquet"
    result = run_reference("--input-path", str(path), "--output-path", str(output))
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert ("no such file" if kind == "missing" else "is a directory") in result.stderr
    assert not output.exists()


@pytest.mark.parametrize("size", [200 << 10, 40 << 20], ids=["200KiB", "40MiB"])
def test_a_malformed_record_with_a_huge_field_is_quarantined_whole(
    write_csv, prepare_file, size: int
):
    """Past Python csv's 128 KiB field limit, and past what the reader's first 8 MiB blocks
    can hold (it reads the file again with larger blocks)."""
    huge = "x" * size
    path = write_csv(
        [csv_line(event_id="before"), f"broken,{huge}", csv_line(event_id="after", user_id="0")]
    )
    prepared = prepare_file(path)
    assert prepared.records_read == 3
    assert prepared.kept.num_rows == 1
    rejects = prepared.rejects.to_pylist()
    assert [(r["source_row"], r["reject_reason"]) for r in rejects] == [
        (2, "malformed_record"),
        (3, "invalid_user_id"),
    ]
    assert rejects[0]["event_id"] == "broken" and rejects[0]["event_ts"] == huge


@pytest.mark.parametrize("size", [200 << 10, 20 << 20], ids=["200KiB", "20MiB"])
def test_a_header_name_of_any_size_is_read_as_a_name(write_csv, prepare_file, size: int):
    path = write_csv([csv_line() + ",web"], header=HEADER + "," + "d" * size)
    prepared = prepare_file(path)
    assert prepared.records_read == 1
    assert prepared.kept.num_rows == 1


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\n\n"], ids=["LF", "CRLF", "LF-LF"])
def test_an_unterminated_quote_at_the_end_keeps_the_line_ends_inside_it(
    tmp_path: Path, prepare_file, line_end: str
):
    path = tmp_path / "events.csv"
    path.write_bytes(f'{HEADER}\n{csv_line()}\ne2,"open{line_end}'.encode())
    rejects = prepare_file(path).rejects.to_pylist()
    assert [(r["source_row"], r["event_id"], r["event_ts"]) for r in rejects] == [
        (2, "e2", "open" + line_end)
    ]


def test_a_bad_byte_inside_a_malformed_record_deep_in_the_file_gives_one_line(tmp_path: Path):
    path = tmp_path / "events.csv"
    good = "".join(csv_line(event_id=f"e{n}") + "\n" for n in range(100_000))
    head = (HEADER + "\n" + good + 'broken,"caf').encode()
    path.write_bytes(head + b'\xe9"\n' + (csv_line(event_id="last") + "\n").encode())
    output = tmp_path / "out.parquet"
    result = run_reference("--input-path", str(path), "--output-path", str(output))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: step 'validated': {path}: not UTF-8: invalid byte 0xe9 at byte offset "
        f"{len(head)} (line 100002)"
    ]
    assert not output.exists()
