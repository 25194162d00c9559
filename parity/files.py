"""The one write recipe (docs/contract.md, "Determinism") and the atomic publication of files.

Every byte of an output file follows from the table and the pinned pyarrow: explicit schema,
no pandas metadata, fixed compression and row-group size, statistics on, nothing from the
clock or the host. Files are written under a hidden temporary name in the target folder and
renamed into place, so a crash never leaves a partial file under a final name.
"""

import fcntl
import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pyarrow as pa
import pyarrow.parquet as pq

from parity.errors import LostFileError, MachineFaultError

COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3
ROW_GROUP_SIZE = 1 << 20
PARQUET_FORMAT_VERSION = "2.6"
# `.<final name>.<12 hex>.tmp`, as atomic_files names its temporaries.
_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")
_OPENING_GRACE_SECONDS = 3600


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
    at any point before leaves the final names as they were. Each temporary is flocked by
    this process while it exists, so the temporaries of a killed writer (lock free) are
    cleared by the next write to the same folder, and a live writer's never are.
    """
    temporaries: list[str] = []
    locks: list[int] = []
    try:
        for path in paths:
            folder = os.path.dirname(os.path.abspath(path))
            with MachineFaultError.on_os_error(folder, "create the output folder"):
                os.makedirs(folder, exist_ok=True)
            clear_dead_temporaries(folder)
            name = f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp"
            temporary = os.path.join(folder, name)
            with MachineFaultError.on_os_error(temporary, "create a file"):
                locks.append(_create_locked(temporary))
            temporaries.append(temporary)
        written = paths[0] if len(paths) == 1 else os.path.dirname(os.path.abspath(paths[0]))
        with MachineFaultError.on_os_error(written, "write"):
            yield list(temporaries)
        for temporary, path in zip(temporaries, paths, strict=True):
            with (
                MachineFaultError.on_os_error(path, "write"),
                _still_ours(temporary),
                open(temporary, "rb") as handle,
            ):
                os.fsync(handle.fileno())
        for temporary, path in zip(temporaries, paths, strict=True):
            with MachineFaultError.on_os_error(path, "publish"), _still_ours(temporary):
                os.replace(temporary, path)
    finally:
        for temporary in temporaries:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
        for lock in locks:
            os.close(lock)


@contextmanager
def _still_ours(temporary: str) -> Iterator[None]:
    """A temporary we created and hold that is gone was taken by another process: say so,
    rather than blame the disk (a missing file is no machine fault of ours)."""
    try:
        yield
    except FileNotFoundError as exc:
        raise LostFileError(
            temporary, "removed by another process while this run held it; nothing published"
        ) from exc


def _create_locked(temporary: str) -> int:
    """Create `temporary`, flocked before it bears a temporary's name: a writer clearing dead
    temporaries in the same folder (another date of a backfill, in another thread or process)
    would otherwise find it unlocked in the instant between creation and flock, and delete it."""
    opening = temporary + "~"  # not a temporary's name: clear_dead_temporaries passes it by
    # Created like any new file (0666 less the umask); mkstemp's 0600 would leak out.
    handle = os.open(opening, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        os.rename(opening, temporary)  # the lock is the inode's: it keeps it under its new name
    except BaseException:
        os.close(handle)
        with suppress(FileNotFoundError):
            os.unlink(opening)
        raise
    return handle


def clear_dead_temporaries(folder: str) -> list[str]:
    """Remove the temporaries in `folder` that no live writer holds; return their paths."""
    removed = []
    for entry in _entries(folder):
        if _TEMPORARY.fullmatch(entry.name.removesuffix("~")) and entry.name.endswith("~"):
            # A writer killed between creating and naming its temporary: unlocked by nature,
            # so only its age tells it from one being named right now.
            with suppress(OSError):
                if time.time() - entry.stat().st_mtime > _OPENING_GRACE_SECONDS:
                    os.unlink(entry.path)
                    removed.append(entry.path)
            continue
        if not _TEMPORARY.fullmatch(entry.name):
            continue
        try:
            handle = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(entry.path)
            removed.append(entry.path)
        except OSError:
            pass  # held by a live writer, or not ours to remove
        finally:
            os.close(handle)
    return removed


def check_output_dir(output_dir: str) -> None:
    """Create `output_dir` if needed and prove a file can be created in it."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise MachineFaultError(output_dir, "is a file, not a folder for the outputs")
    with MachineFaultError.on_os_error(output_dir, "create the output folder"):
        os.makedirs(output_dir, exist_ok=True)
    # The probe is an unnamed file (O_TMPFILE; where a filesystem lacks it, stdlib's
    # `tmpXXXXXXXX`, unlinked at once): no clean-up of the folder can match it, so another
    # writer's sweep in the same folder (a backfill's other dates) can never take it away.
    with MachineFaultError.on_os_error(output_dir, "write in the output folder"):
        tempfile.TemporaryFile(dir=output_dir).close()


def _entries(folder: str) -> list[os.DirEntry]:
    try:
        return list(os.scandir(folder))
    except OSError:
        return []


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
