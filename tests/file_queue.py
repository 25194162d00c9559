"""`make test`'s two pytest sessions share out the local test files as they go, so both end
at about the same time whatever the files cost (scripts/test_tiers.sh).

One session runs the local files from the first; the other runs the deployed tier, then the
local files from the last. Before a session starts a file, it claims it in the queue folder
both were given (one exclusive create, so exactly one session wins); a file the other
session holds is passed over without a report. A test file is the unit, so its module
fixtures run once. Both sessions run orchestrators on this checkout's local state at once,
as users' runs side by side do; a test marked `exclusive_state` (one that needs the next run
of an orchestrator to be its own: "the next run marks the killed one failed") holds an
exclusive lock in the queue folder while every test that starts an orchestrator holds a
shared one. Without $PARITY_TEST_QUEUE (plain pytest), nothing here changes anything.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _pytest.runner import runtestprotocol

# The claims folder, one per `make test`; taken out of the environment, so a pytest a test
# starts (an environment's own definition tests) is not a third session of the queue.
QUEUE = os.environ.pop("PARITY_TEST_QUEUE", None)
FROM_THE_END = os.environ.pop("PARITY_TEST_QUEUE_END", None) == "last"
_claimed: dict[Path, bool] = {}
_first_of_next_file: dict[int, pytest.Item | None] = {}


def _mine(path: Path) -> bool:
    """Whether this session runs the test file `path`: claimed by it now, or before."""
    if path not in _claimed:
        claim = Path(QUEUE, str(path).replace(os.sep, "%"))
        try:
            os.close(os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            _claimed[path] = True
        except FileExistsError:
            _claimed[path] = False
    return _claimed[path]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not QUEUE:
        return
    if FROM_THE_END:
        files: dict[Path, list[pytest.Item]] = {}
        for item in items:
            files.setdefault(item.path, []).append(item)
        deployed = [group for group in files.values() if group[0].get_closest_marker("deployed")]
        local = [group for group in files.values() if not group[0].get_closest_marker("deployed")]
        items[:] = [item for group in deployed + local[::-1] for item in group]
    # The first item of the file after each item's file (None after the last file).
    for index in range(len(items) - 1, -1, -1):
        later = items[index + 1] if index + 1 < len(items) else None
        if later is not None and later.path == items[index].path:
            _first_of_next_file[id(items[index])] = _first_of_next_file[id(later)]
        else:
            _first_of_next_file[id(items[index])] = later


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """Run `item` if its file is this session's; tear down for the next item this session
    will run (the next one of this file, or the first of the next file it wins)."""
    if not QUEUE:
        return None
    if not _mine(item.path):
        return True  # the other session runs this file
    following = nextitem
    while following is not None and following.path != item.path and not _mine(following.path):
        following = _first_of_next_file[id(following)]
    with _state_lock(item):
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        runtestprotocol(item, nextitem=following)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


@contextmanager
def _state_lock(item: pytest.Item) -> Iterator[None]:
    """The lock on the orchestrators' local state, held for one test: exclusive for an
    `exclusive_state` test, shared for any other that starts an orchestrator."""
    if item.get_closest_marker("exclusive_state"):
        mode = fcntl.LOCK_EX
    elif item.get_closest_marker("orchestrators") or item.get_closest_marker("deployed"):
        mode = fcntl.LOCK_SH
    else:
        yield
        return
    with open(Path(QUEUE, ".state.lock"), "a") as lock:  # closing it releases the lock
        fcntl.flock(lock, mode)
        yield
