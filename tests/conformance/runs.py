"""Runs of `make` that tests start, watch, kill and always stop: real processes, each in its
own session, so a kill reaches the run's whole process group as a user's Ctrl-\\ or a CI
runner's timeout would, and a failing test still leaves nothing running."""

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.conformance.wrappers import ancestors, survivors
from tests.conftest import PROJECT, carries_session_mark, user_environment

SAMPLE_DATES = [f"2024-01-0{day}" for day in range(1, 8)]
BACKFILL = (SAMPLE_DATES[0], SAMPLE_DATES[-1])
LARGE_BACKFILL_DATES = SAMPLE_DATES[1:4]  # what a backfill of the large input covers
# Generous: two orchestrators start at once on a machine shared with other work.
RUN_TIMEOUT_SECONDS = 900
POLL_SECONDS = 0.02


@dataclass
class StartedRun:
    """A `make` started in a new session; its output goes to files, so it never blocks."""

    process: subprocess.Popen
    stdout: Path
    stderr: Path

    def wait(self, timeout: float = RUN_TIMEOUT_SECONDS) -> subprocess.CompletedProcess:
        self.process.wait(timeout=timeout)
        return subprocess.CompletedProcess(
            self.process.args,
            self.process.returncode,
            self.stdout.read_text(errors="replace"),
            self.stderr.read_text(errors="replace"),
        )

    def kill_group(self) -> None:
        """SIGKILL every process of the run's group (make, the wrapper, its children)."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@contextmanager
def started_make(logs: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[StartedRun]:
    """Start `make ARGS` in its own session; on the way out its process group is killed,
    whatever happened in the block."""
    logs.mkdir(parents=True, exist_ok=True)
    number = len(list(logs.glob("*.stdout")))
    stdout, stderr = logs / f"{number}.stdout", logs / f"{number}.stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            ["make", "--no-print-directory", *args],
            cwd=PROJECT,
            stdout=out,
            stderr=err,
            env={**user_environment(), **(env or {})},
            start_new_session=True,
        )
    run = StartedRun(process, stdout, stderr)
    try:
        yield run
    finally:
        run.kill_group()


def wait_until(condition: Callable[[], bool], run: StartedRun, what: str, timeout: float) -> None:
    """Poll `condition` until it holds; fail naming `what` if the run ends or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if run.process.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {run.stderr.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no sign of {what} after {timeout} s")
        time.sleep(POLL_SECONDS)


def no_survivors(environment: str, timeout: float = 30) -> list[str]:
    """The processes of `environment` still running once killed ones had time to vanish."""
    deadline = time.monotonic() + timeout
    while (found := survivors(environment)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def stop_marked() -> list[int]:
    """SIGKILL every process that carries this session's mark, except this test process and
    its parents; return their ids. Nothing started elsewhere carries it."""
    mine, stopped = ancestors(), []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and proc.name not in mine and carries_session_mark(proc):
            with suppress(OSError):
                os.kill(int(proc.name), signal.SIGKILL)
                stopped.append(int(proc.name))
    return stopped


def error_lines(stderr: str) -> list[str]:
    """What the command said on stderr, without make's own `make: ***` status line."""
    return [line for line in stderr.splitlines() if line.strip() and not _MAKE_STATUS.match(line)]


_MAKE_STATUS = re.compile(r"make(\[\d+\])?: \*\*\* ")
