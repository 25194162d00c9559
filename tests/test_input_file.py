"""The input's bytes read once: each block hashed, counted and checked as UTF-8 (contract §1, §9).

Small blocks put every block boundary through the middle of multi-byte characters.
"""

import hashlib
import os
import threading
from pathlib import Path

import pytest

from shared_etl.errors import InputFileError
from shared_etl.input_file import InputFacts, InputFile
from tests.conftest import HEADER, csv_line, run_reference

TEXT = 'é€𝄞,a\r\nb,"ü\n"\n'.encode() * 7  # characters of 2, 3 and 4 bytes


def _read_all(path: Path, block_size: int) -> tuple[bytes, InputFacts]:
    with InputFile(str(path)) as source:
        stream = source.new_pass(block_size)
        blocks = []
        while block := stream.read(block_size):
            block.to_pybytes().decode("utf-8")  # every block handed on is whole characters
            blocks.append(block.to_pybytes())
        return b"".join(blocks), stream.facts()


@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 7, 64])
def test_blocks_cut_anywhere_hand_on_whole_characters_and_every_byte_once(
    tmp_path: Path, block_size: int
):
    path = tmp_path / "text.csv"
    path.write_bytes(TEXT)
    data, facts = _read_all(path, block_size)
    assert data == TEXT
    assert facts == InputFacts(sha256=hashlib.sha256(TEXT).hexdigest(), size_bytes=len(TEXT))


@pytest.mark.parametrize("block_size", [1, 3, 7])
def test_a_bad_byte_anywhere_is_named_by_its_offset_and_line(tmp_path: Path, block_size: int):
    path = tmp_path / "text.csv"
    for offset in range(0, len(TEXT), 5):
        if TEXT[offset] & 0xC0 == 0x80:
            continue  # a continuation byte: replacing it makes its lead byte the bad one
        path.write_bytes(TEXT[:offset] + b"\xff" + TEXT[offset + 1 :])
        with pytest.raises(InputFileError) as caught:
            _read_all(path, block_size)
        line = TEXT.count(b"\n", 0, offset) + 1
        assert f"invalid byte 0xff at byte offset {offset} (line {line})" in str(caught.value)


def test_a_character_cut_by_the_end_of_the_file_is_named(tmp_path: Path):
    path = tmp_path / "text.csv"
    path.write_bytes(TEXT + "€".encode()[:2])
    with pytest.raises(InputFileError, match=f"truncated character at byte offset {len(TEXT)}"):
        _read_all(path, 4)


def test_an_input_read_from_a_pipe_gives_the_same_outputs_as_the_file(tmp_path: Path):
    """One read of the bytes: a pipe, which can be read only once, is an input too."""
    content = HEADER + "\n" + csv_line() + "\n" + csv_line(event_id="e2", user_id="x") + "\n"
    source = tmp_path / "events.csv"
    source.write_text(content)
    pipe = tmp_path / "events.pipe"
    os.mkfifo(pipe)
    writer = threading.Thread(target=pipe.write_text, args=(content,))
    writer.start()
    try:
        from_pipe = run_reference(
            "--input-path", str(pipe), "--output-path", str(tmp_path / "p.parquet")
        )
    finally:
        if writer.is_alive():  # the run never opened the pipe: open it, so the writer ends
            with pipe.open("rb") as drain:
                drain.read()
        writer.join()
    from_file = run_reference(
        "--input-path", str(source), "--output-path", str(tmp_path / "f.parquet")
    )
    assert from_pipe.returncode == 0, from_pipe.stderr
    assert from_file.returncode == 0, from_file.stderr
    for suffix in (".parquet", ".rejects.parquet"):
        assert (tmp_path / f"p{suffix}").read_bytes() == (tmp_path / f"f{suffix}").read_bytes()


def test_a_file_cut_inside_a_character_while_it_is_read_is_named_as_changed(tmp_path: Path):
    path = tmp_path / "text.csv"
    path.write_bytes(TEXT)
    with InputFile(str(path)) as source:
        stream = source.new_pass(4)
        stream.read(4)
        os.truncate(path, TEXT.index("€".encode()) + 1)
        with pytest.raises(InputFileError, match="changed while it was read"):
            while stream.read(4):
                pass
