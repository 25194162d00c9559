"""One way for every adapter to tell a live run from a killed one: its driver (the process that
asked the orchestrator for the run) holds an flock on `<folder>/<key>.lock` while the run is
in progress. The kernel drops the lock when the driver dies, SIGKILL included, so a later
command that can take a run's lock knows nobody will ever finish that run, and closes it in
the orchestrator's own records (Prefect would show it Running for ever, Airflow and Dagster
too). The key is whatever the orchestrator's records can be searched by: a flow run's id, a
run id chosen before the run, or a key the runs carry in their configuration.
"""

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


@contextmanager
def held(folder: Path, key: str) -> Iterator[None]:
    """Hold `key`'s lock for the block. It is taken under a temporary name and only then
    renamed into place, so a sweeper never sees an untaken lock of a live run; it is unlinked
    before it is released, so a sweeper that takes it just then sees a run that ended."""
    folder.mkdir(parents=True, exist_ok=True)
    pending, lock_path = folder / f"{key}.new", folder / f"{key}.lock"
    with open(pending, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pending.rename(lock_path)
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)


def close_dead(folder: Path, close: Callable[[str], None]) -> list[str]:
    """Call `close(key)` for every run whose driver died, then forget it; return their keys.
    `close` must be idempotent: a sweeper killed half-way leaves the lock for the next one."""
    closed = []
    for lock_path in sorted(folder.glob("*.lock")) if folder.is_dir() else []:
        with suppress(FileNotFoundError), open(lock_path) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live run
            if os.fstat(lock.fileno()).st_nlink == 0:
                continue  # it ended normally while we looked
            close(lock_path.stem)
            closed.append(lock_path.stem)
            lock_path.unlink(missing_ok=True)
    return closed
