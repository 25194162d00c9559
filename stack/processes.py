"""Which processes belong to the stack, however deep: supervisord gives every program its
environment, so each one and each child it forks carries STACK_STATE=<this .state/stack>.
PostgreSQL and Redis also run inside .state/stack (their working directory)."""

import contextlib
import os
import signal
import time
from pathlib import Path

from stack import layout

_MARKER = f"STACK_STATE={layout.STATE}".encode()


def _stat(number: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [state, ppid, ...]; empty once it is gone."""
    try:
        return Path(f"/proc/{number}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _belongs(proc: Path) -> bool:
    try:
        if _MARKER in (proc / "environ").read_bytes().split(b"\0"):
            return True
        return Path(os.readlink(proc / "cwd")).is_relative_to(layout.STATE)
    except OSError:
        return False


def _ancestors() -> set[int]:
    """This process and its parents (say, a shell whose working directory is in .state/stack)."""
    found, number = set(), os.getpid()
    while number > 1 and number not in found:
        found.add(number)
        fields = _stat(number)
        number = int(fields[1]) if fields else 1
    return found


def of_stack() -> dict[int, str]:
    """pid → command line of every live process of the stack, except this one's callers."""
    found, mine = {}, _ancestors()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in mine or not _belongs(proc):
            continue
        if _stat(int(proc.name))[:1] in ([], ["Z"]):
            continue  # gone, or a zombie waiting for its parent: nothing runs
        with contextlib.suppress(OSError):
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            found[int(proc.name)] = command
    return found


def stop_leftovers(grace: float = 10.0) -> dict[int, str]:
    """SIGTERM, then SIGKILL after `grace` seconds, whatever of the stack still runs once
    supervisord is gone; returns what had to be stopped."""
    leftovers = of_stack()
    for number in leftovers:
        _signal(number, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while of_stack() and time.monotonic() < deadline:
        time.sleep(0.1)
    for number in of_stack():
        _signal(number, signal.SIGKILL)
    return leftovers


def _signal(number: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(number, sig)
