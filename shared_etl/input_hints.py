"""What a whole-file error can guess about its cause: a compressed or binary file, another
encoding, another delimiter. Each hint is one clause appended to the error's line, saying
what the file looks like and what to do; no guess, no clause."""

# Leading bytes of the files people hand to a CSV reader by mistake.
_MAGIC = (
    (b"\x1f\x8b", "it looks gzip-compressed: gunzip it first"),
    (b"BZh", "it looks bzip2-compressed: bunzip2 it first"),
    (b"\xfd7zXZ\x00", "it looks xz-compressed: unxz it first"),
    (b"PK\x03\x04", "it looks like a zip archive (an .xlsx workbook is one): unzip it, or "
                    "export the sheet as CSV (UTF-8)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "it looks like an Excel .xls workbook: export the "
                                         "sheet as CSV (UTF-8)"),
    (b"\xff\xfe", "it starts with a UTF-16 byte-order mark: save it as UTF-8"),
    (b"\xfe\xff", "it starts with a UTF-16 byte-order mark: save it as UTF-8"),
)  # fmt: skip
_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def binary_format(head: bytes) -> str | None:
    """A hint from the file's first bytes, or None."""
    return next((hint for magic, hint in _MAGIC if head.startswith(magic)), None)


def delimiter_hint(header: list[str]) -> str | None:
    """A hint when the header is one field that holds another common delimiter, or None."""
    if len(header) != 1:
        return None
    found = [name for char, name in _DELIMITERS.items() if char in header[0]]
    if len(found) != 1:
        return None
    char = next(char for char, name in _DELIMITERS.items() if name == found[0])
    return (f"the header is one field holding {char!r}: the file looks {found[0]}-delimited; "
            "the input must be comma-separated")  # fmt: skip
