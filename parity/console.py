"""What a wrapper prints on the console beside the orchestrator's own log, in one format for
every wrapper: one line per retry, and where the full log of a run is kept.

A failure of the pipeline's own (a bad input, exhausted retries) ends with its one-line
reason; the orchestrator's tracebacks of it belong in a log file under .state/logs/, and the
console says where that file is. Kept free of orchestrator imports: every wrapper uses it.
"""

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


def retry_line(step: str, attempt: int, reason: str, delay: float,
               attempts: int | None = None) -> str:  # fmt: skip
    """One line for a retry: the step, the attempt that failed (of how many are allowed, when
    the orchestrator says), the reason on one line, and the delay before the next attempt."""
    first = " ".join(reason.split()) or "no message"
    of = f" of {attempts}" if attempts else ""
    seconds = f"{delay:g} s" if delay else "at once"
    return f"retry: step {step!r} attempt {attempt}{of} failed: {first}; next attempt in {seconds}"


def progress(line: str) -> None:
    """A line of a deployed run's progress as its command follows it, stamped with the time,
    the same in every orchestrator's submitter (`HH:MM:SS | line`)."""
    print(f"{time.strftime('%H:%M:%S')} | {line}", flush=True)


# The logger of the lines meant for the console while output_to sends the rest to a file.
CONSOLE_LOGGER = "parity.console"


def announce(line: str) -> None:
    """Show `line` on the console (output_to's), else wherever the logger goes by default."""
    logging.getLogger(CONSOLE_LOGGER).warning(line)


class BelowErrors(logging.Filter):
    """A console handler's filter: errors are for the full log, while the console gets the
    failure's one line from the command itself (and a bug's traceback, never caught)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


def log_file(state: Path, wrapper: str) -> Path:
    """A fresh log file for one command of `wrapper`, under `state`, the wrapper's ignored
    state folder: the project's `.state/`, or the image's own where the runtime is installed
    into a read-only environment."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return state / "logs" / wrapper / f"{stamp}-{os.getpid()}.log"


def full_log_line(path: Path) -> str:
    return f"full log: {path}"


@contextmanager
def output_to(path: Path) -> Iterator[TextIO]:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so child processes and
    C-level writes too) to `path` for the block; yield a stream on the console's stdout, for
    the few lines the user is meant to see meanwhile (retries).

    For orchestrators whose in-process runs write their task logs straight to the standard
    streams (Airflow's dag.test), with no setting that routes them elsewhere.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    console = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    with open(path, "ab") as sink, console:
        os.dup2(sink.fileno(), 1), os.dup2(sink.fileno(), 2)
        handler = logging.StreamHandler(console)
        logger = logging.getLogger(CONSOLE_LOGGER)
        logger.addHandler(handler)
        logger.propagate = False
        try:
            yield console
        finally:
            logger.removeHandler(handler)
            logger.propagate = True
            sys.stdout.flush(), sys.stderr.flush()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd), os.close(copy)
