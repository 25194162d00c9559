"""The one write recipe (SPEC §7) and the atomic publication of files.

Every byte of an output file follows from the table and the pinned pyarrow: explicit schema,
no pandas metadata, fixed compression and row-group size, statistics on, nothing from the
clock or the host. Files are written under a hidden temporary name in the target folder and
renamed into place, so a crash never leaves a partial file under a final name.
"""

import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.parquet as pq

COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3
ROW_GROUP_SIZE = 1 << 20
PARQUET_FORMAT_VERSION = "2.6"


def write_parquet(table: pa.Table, schema: pa.Schema, path: str) -> None:
    """Write `table`, which must have exactly `schema`, to `path` with the one recipe."""
    if not table.schema.equals(schema, check_metadata=True):
        raise TypeError(
            f"refusing to write {path}: its schema is not the contract's:\n{table.schema}"
        )
    pq.write_table(
        table,
        path,
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
        row_group_size=ROW_GROUP_SIZE,
        version=PARQUET_FORMAT_VERSION,
        write_statistics=True,
        use_dictionary=True,
    )


def write_json(document: dict, path: str) -> None:
    """Write `document` as sorted, indented JSON."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")


@contextmanager
def atomic_files(*paths: str) -> Iterator[list[str]]:
    """Yield temporary paths beside `paths`; when the block succeeds, rename them into place.

    The renames come only after every file is complete and synced, so a failure or a kill
    at any point before leaves the final names as they were.
    """
    temporaries = []
    try:
        for path in paths:
            folder = os.path.dirname(os.path.abspath(path))
            os.makedirs(folder, exist_ok=True)
            temporary = os.path.join(
                folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp"
            )
            # Created like any new file (0666 less the umask); mkstemp's 0600 would leak out.
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            temporaries.append(temporary)
        yield list(temporaries)
        for temporary in temporaries:
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
        for temporary, path in zip(temporaries, paths, strict=True):
            os.replace(temporary, path)
    finally:
        for temporary in temporaries:
            if os.path.exists(temporary):
                os.unlink(temporary)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
