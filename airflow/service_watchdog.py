"""Airflow's services for one backfill, tied to the life of the driver that started them.

    python airflow/service_watchdog.py '[{"argv": [...], "log": "path"}, ...]'   (stdin: a pipe)

The scheduler, the API server and the task workers they fork must not outlive `run.py`,
whatever kills it (SIGKILL of its process group, or of run.py alone), or they would finish a
killed run's work. They cannot simply share run.py's process group: Airflow's task
supervisor puts each task in a process group of its own. So this watchdog, in a session of
its own (out of reach of a kill aimed at the driver's group), starts the services and is
their child subreaper (PR_SET_CHILD_SUBREAPER): every descendant, orphaned or not, stays
below it, so it can always find them all in /proc. It waits on a pipe from the driver:
  - the driver writes "stop": SIGTERM every descendant, SIGKILL what is left after a grace;
  - the pipe ends without it (the driver died): SIGKILL every descendant at once, so no task
    of the killed run does any more work.
Each service also gets PR_SET_PDEATHSIG, so that even a SIGKILL of this watchdog takes the
services down with it.
"""

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time

from parity import processes

STOP_GRACE_SECONDS = 20


def descendants() -> list[int]:
    """Every live process below this one (as subreaper, orphans re-parent to us)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":  # a zombie is already dead; reaping removes it
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, pending = [], [os.getpid()]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _signal_all(signal_number: int) -> list[int]:
    pids = descendants()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_number)
    return pids


def stop_all(grace: float) -> None:
    """SIGTERM every descendant (unless grace is 0), SIGKILL what remains, reap them all."""
    if grace > 0:
        _signal_all(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while descendants() and time.monotonic() < deadline:
            _reap()
            time.sleep(0.2)
    while _signal_all(signal.SIGKILL):
        _reap()
        time.sleep(0.1)
    _reap()


def main() -> int:
    processes.become_subreaper()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only the pipe decides; see the docstring
    for service in json.loads(sys.argv[1]):
        with open(service["log"], "w") as log:
            subprocess.Popen(service["argv"], stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT,
                             preexec_fn=processes.tied_to_this_process())  # fmt: skip
    message = b""
    while True:
        ready, _, _ = select.select([sys.stdin.buffer], [], [], 1.0)
        _reap()
        if ready:
            chunk = os.read(sys.stdin.fileno(), 64)
            if not chunk:
                break
            message += chunk
            if b"stop" in message:
                break
    stop_all(STOP_GRACE_SECONDS if b"stop" in message else 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
