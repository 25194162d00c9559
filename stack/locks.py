"""Two file locks (flock, released by the kernel if a holder dies) that let several `make`
commands share one stack:

- `changing()`: held while the stack is brought up or down, so two `make up` (or an up and a
  down) never race for ports, initdb or supervisord's socket;
- `using()`: held, shared, by every `stack exec` command while it runs, so the exec that
  started a stopped stack waits for the others before it stops the stack again.
"""

import fcntl
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from stack import layout


@contextmanager
def _flock(name: str, mode: int) -> Iterator[None]:
    layout.STATE.mkdir(parents=True, exist_ok=True)
    with open(layout.STATE / name, "a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def changing() -> AbstractContextManager[None]:
    return _flock("change.lock", fcntl.LOCK_EX)


def using(exclusive: bool = False) -> AbstractContextManager[None]:
    return _flock("users.lock", fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
