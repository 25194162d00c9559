"""The input file's bytes, read once per pass: the facts describe exactly what was parsed.

contract §9: the manifest's sha256 and size are those of the bytes that were parsed. So the
parser does not open the file itself: it reads through a `CheckedStream`, which hashes,
counts and checks as UTF-8 (contract §1) every block before handing it on. The facts are of the
parsed bytes by construction, and the parser never sees a byte that is not UTF-8 (the bad
byte fails the file first, with its offset and line). A regular file whose size or mtime at
the end of a pass differs from those at open changed while it was read: the run fails
rather than describe bytes that are no longer there.

The file is opened once; each pass reads it with `pread` at its own offset, so a pass that
was abandoned (its reader may still be reading ahead in a thread) cannot disturb the next.
"""

import codecs
import hashlib
import io
import os
import stat
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from shared_etl.errors import InputFileError
from shared_etl.input_hints import binary_format


@dataclass(frozen=True)
class InputFacts:
    """What the manifest records of the input file: the bytes that were parsed."""

    sha256: str
    size_bytes: int


class InputFile:
    """The input, opened once: a context manager that hands out checked passes over it."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise InputFileError(path, "no such file") from None
        except PermissionError:
            raise InputFileError(path, "permission denied") from None
        except OSError as exc:
            raise InputFileError(path, f"cannot be opened: {exc.strerror}") from None
        opened = os.fstat(self._fd)
        if stat.S_ISDIR(opened.st_mode):
            os.close(self._fd)
            raise InputFileError(path, "is a directory, not a CSV file")
        self._opened = opened
        self._passes = 0

    @property
    def can_reread(self) -> bool:
        """Whether another pass from the first byte is possible (not for a pipe)."""
        return stat.S_ISREG(self._opened.st_mode)

    def new_pass(self, block_size: int) -> "CheckedStream":
        """A pass from the first byte, read `block_size` bytes at a time. A second pass needs
        a regular file."""
        if self._passes and not self.can_reread:
            raise InputFileError(self.path, "cannot be read twice (it is not a regular file)")
        self._passes += 1
        return CheckedStream(self.path, self._fd, self._opened, block_size)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> "InputFile":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class CheckedStream(io.RawIOBase):
    """One pass over the bytes, in order, as a file object a parser reads from.

    Every block is hashed, counted and checked as UTF-8 before `read` returns it; a
    character cut by a block boundary is held back and returned with the next block, so each
    block handed on is whole, valid text. Blocks are Arrow buffers, read into memory from
    Arrow's own pool, as when pyarrow reads a file itself.
    """

    def __init__(self, path: str, fd: int, opened: os.stat_result, block_size: int) -> None:
        super().__init__()
        self.block_size = block_size
        self._path = path
        self._fd = fd
        self._opened = opened
        self._positioned = stat.S_ISREG(opened.st_mode)
        self._digest = hashlib.sha256()
        self._size = 0  # bytes read from the file
        self._newlines = 0  # in the bytes handed on, for the line of a bad byte
        self._held = b""  # the start of a character cut by the end of a block
        self._at_end = False
        self._replay: list[pa.Buffer] = []  # blocks peeked at, handed on again by `read`
        self._last_bytes = b""  # the end of the bytes read so far

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> pa.Buffer:
        """The next block of checked bytes; an empty one only at the end of the file."""
        if self._replay:
            return self._replay.pop(0)
        return self._next_block(size if size and size > 0 else self.block_size)

    def peek(self, size: int) -> bytes:
        """The first `size` bytes ahead (fewer only at the end), which `read` returns again.

        They are read in whole blocks, so the parser gets blocks of the size it expects.
        """
        held = sum(block.size for block in self._replay)
        while held < size and not self._at_end:
            block = self._next_block(self.block_size)
            self._replay.append(block)
            held += block.size
        ahead = bytearray()
        for block in self._replay:
            if len(ahead) >= size:
                break
            ahead += memoryview(block)[: size - len(ahead)]
        return bytes(ahead)

    @property
    def line_end(self) -> str:
        """The line end the file finishes with ("\\r\\n", "\\n", "\\r", or "" for none)."""
        for ending in ("\r\n", "\n", "\r"):
            if self._last_bytes.endswith(ending.encode()):
                return ending
        return ""

    def facts(self) -> InputFacts:
        """The facts of the bytes handed on; only after the last of them, and the file still."""
        if not self._at_end or self._replay:
            raise RuntimeError(f"{self._path}: facts asked before the whole file was read")
        self._check_unchanged()
        return InputFacts(sha256=self._digest.hexdigest(), size_bytes=self._size)

    def _check_unchanged(self) -> None:
        """A regular file read to its end: as long, and as last modified, as when opened."""
        if not self._positioned:
            return
        now = os.fstat(self._fd)
        if (
            self._size != self._opened.st_size
            or now.st_size != self._opened.st_size
            or now.st_mtime_ns != self._opened.st_mtime_ns
        ):
            raise InputFileError(
                self._path,
                f"changed while it was read ({self._opened.st_size} bytes when opened, "
                f"{self._size} read, {now.st_size} now): run again once it is complete",
            )

    def _next_block(self, size: int) -> pa.Buffer:
        while not self._at_end:
            chunk = pa.allocate_buffer(size)
            if self._positioned:
                got = os.preadv(self._fd, [chunk], self._size)
            else:
                got = os.readv(self._fd, [chunk])
            if not got:
                self._at_end = True
                self._check_unchanged()  # a file cut short explains a cut character best
                self._check_end()
                break
            if got < size:
                chunk = chunk.slice(0, got)  # a view: resizing would leave the capacity visible
            self._digest.update(chunk)
            self._last_bytes = self._last_bytes[-1:] + chunk[-2:].to_pybytes()
            start = self._size - len(self._held)  # the file offset of data[0]
            self._size += got
            data = pa.py_buffer(self._held + chunk.to_pybytes()) if self._held else chunk
            whole = _whole_characters(data)
            self._check_utf8(data, whole, start)
            self._held = data[whole:].to_pybytes()
            if whole:
                return data if whole == data.size else data[:whole]
        return pa.py_buffer(b"")

    def _check_utf8(self, data: pa.Buffer, whole: int, start: int) -> None:
        """Arrow's validator runs free of the GIL and builds no Python string."""
        text = pa.Array.from_buffers(
            pa.large_string(),
            1,
            [None, pa.py_buffer(np.array([0, whole], dtype=np.int64)), data],
        )
        try:
            text.validate(full=True)
        except pa.ArrowInvalid:
            try:
                codecs.utf_8_decode(data[:whole], "strict", True)
            except UnicodeDecodeError as exc:
                self._fail(data.to_pybytes(), exc, start)
            raise  # Arrow and Python disagree on UTF-8: a bug, keep its traceback
        self._newlines += int(np.count_nonzero(np.frombuffer(data, np.uint8, whole) == 10))

    def _check_end(self) -> None:
        if not self._held:
            return
        try:
            codecs.utf_8_decode(self._held, "strict", True)
        except UnicodeDecodeError as exc:
            if exc.reason != "unexpected end of data":
                self._fail(self._held, exc, self._size - len(self._held))
        raise InputFileError(
            self._path,
            f"not UTF-8: truncated character at byte offset {self._size - len(self._held)}",
        )

    def _fail(self, data: bytes, exc: UnicodeDecodeError, start: int) -> None:
        line = self._newlines + data.count(b"\n", 0, exc.start) + 1
        hint = binary_format(data[:8]) if start == 0 else None
        raise InputFileError(
            self._path,
            f"not UTF-8: invalid byte 0x{data[exc.start]:02x} at byte offset "
            f"{start + exc.start} (line {line})" + (f" ({hint})" if hint else ""),
        ) from None


def _whole_characters(data: bytes) -> int:
    """The length of `data` without a multi-byte character cut at its end (if any).

    Only a valid lead byte (0xC2-0xF4) followed by fewer continuation bytes than it needs is
    held back; any other byte is left for the validator to judge now.
    """
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: the character started earlier
            continue
        needed = 2 if 0xC2 <= byte <= 0xDF else 3 if 0xE0 <= byte <= 0xEF else 4
        if byte < 0xC2 or byte > 0xF4 or back >= needed:
            return len(data)
        return len(data) - back
    return len(data)
