"""Staging areas: the folders a run's steps pass data through, which die with the run.

A run holds its area with an exclusive `flock` on the area's `.lock` file for as long as the
holding process lives. The kernel drops the lock when that process ends, SIGKILL included, so
a later run can tell a dead run's area from a live one without pids or clocks, and clears
it. While an area is held, $ETL_STAGING_ROOT points into it: steps that run in child
processes (Airflow's task workers) put their per-run folders inside the same area.
"""

import fcntl
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from parity.errors import MachineFaultError

ROOT_VARIABLE = "ETL_STAGING_ROOT"
LOCK_NAME = ".lock"
# A folder with no lock file is either an area being created this very moment or a leftover
# of a version that held no locks; only the latter is this old.
UNLOCKED_GRACE_SECONDS = 3600


def staging_root() -> str:
    """Where areas are made: $ETL_STAGING_ROOT, or the user's own folder in the temp dir."""
    default = os.path.join(tempfile.gettempdir(), f"etl-staging-{os.getuid()}")
    return os.environ.get(ROOT_VARIABLE) or default


@contextmanager
def staging_area(label: str) -> Iterator[str]:
    """Hold a fresh area under the staging root for the block, then remove it.

    Areas of dead runs are cleared first. Inside the block $ETL_STAGING_ROOT is the area, so
    `new_staging_dir` and child processes started within stage their files there.
    """
    root = staging_root()
    with MachineFaultError.on_os_error(root, "create a staging area"):
        os.makedirs(root, exist_ok=True)
        clear_dead_areas(root)
        area = os.path.join(root, f"{label}-{secrets.token_hex(6)}")
        os.mkdir(area)
        # Locked before it gets its name: a sweeper never sees an unlocked `.lock` of ours.
        pending = os.path.join(area, LOCK_NAME + ".new")
        lock = os.open(pending, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.rename(pending, os.path.join(area, LOCK_NAME))
    previous = os.environ.get(ROOT_VARIABLE)
    os.environ[ROOT_VARIABLE] = area
    try:
        yield area
    finally:
        if previous is None:
            os.environ.pop(ROOT_VARIABLE, None)
        else:
            os.environ[ROOT_VARIABLE] = previous
        shutil.rmtree(area, ignore_errors=True)
        os.close(lock)


def run_folder(label: str) -> str:
    """A fresh folder for one run's staged results, inside the area the command holds (or,
    in a worker that holds none, under $ETL_STAGING_ROOT as the command passed it on)."""
    path = os.path.join(staging_root(), f"{label}-{secrets.token_hex(6)}")
    with MachineFaultError.on_os_error(path, "create the staging folder"):
        os.makedirs(path)
    return path


def clear_dead_areas(root: str) -> list[str]:
    """Remove the areas under `root` whose holder has died; return what was removed."""
    removed = []
    with suppress(FileNotFoundError):
        entries = list(os.scandir(root))
    for entry in entries if os.path.isdir(root) else []:
        if entry.is_dir(follow_symlinks=False) and _is_dead(entry.path):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def is_held(area: str) -> bool:
    """Whether a live process holds `area` (a worker's check that the command that asked for
    its run still waits for it). Gone, or its lock gone, is not held: it was cleared."""
    try:
        handle = os.open(os.path.join(area, LOCK_NAME), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(handle)  # drops the lock if we took it
    return False


def _is_dead(area: str) -> bool:
    try:
        lock = os.open(os.path.join(area, LOCK_NAME), os.O_RDWR)
    except FileNotFoundError:
        try:
            return time.time() - os.stat(area).st_mtime > UNLOCKED_GRACE_SECONDS
        except FileNotFoundError:
            return False
    except OSError:
        return False  # not ours to judge (another user's area)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(lock)  # also drops the lock we may have taken
    return True
