"""What every local Prefect run of a declared pipeline (adapter.py) needs around its flow:
Prefect's temporary API server tied to this process, a killed run's flow run closed as
Crashed by the next run (parity.liveness), and the pointer to the full log when a run fails.
Imported after prefect_env, which sets Prefect's settings; light to import (a deployed
worker's flow-run process loads it too), the server only when started.
"""

import fcntl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from unittest import mock

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, PREFECT_HOME, PREFECT_SERVER_EPHEMERAL_ENABLED
from prefect.states import Crashed

from parity import console, liveness, processes


def running_folder() -> Path:
    return Path(PREFECT_HOME.value()) / "running"


def held_while_running(flow_run_id: str):
    """The flow run's liveness lock (parity.liveness), held by the flow for its whole run."""
    return liveness.held(running_folder(), str(flow_run_id))


def mark_killed_runs_crashed() -> list[str]:
    """Set the flow runs whose process was killed (their lock is free) to Crashed: Prefect
    would show them Running for ever. Returns their ids."""

    def crash(flow_run_id: str) -> None:
        with get_client(sync_client=True) as client, suppress(ObjectNotFound):
            state = client.read_flow_run(flow_run_id).state
            if state is not None and not state.is_final():
                message = "its process was killed; found by a later run"
                client.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)

    return liveness.close_dead(running_folder(), crash)


def start_api_server_tied_to_this_process() -> None:
    """Start Prefect's own temporary API server now, from the main thread, so that it dies
    with this process. Prefect starts it lazily as a plain child, which outlives a SIGKILL
    of its parent (an OOM kill, `kill -9`) and keeps serving with no one to stop it; Prefect
    has no setting for this, so its Popen gets a parent-death signal. Every Prefect client
    of this process then uses this server (Prefect keeps one per process). Nothing to do
    when PREFECT_API_URL names a running server (or ephemeral mode is off).

    Each server migrates the database as it starts; two at once on a new (or older) database
    collide ("duplicate column") and one dies with a traceback, so runs side by side start
    their servers one at a time, under a lock the kernel drops if its holder is killed."""
    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    from prefect.server.api.server import SubprocessASGIServer  # all of Prefect's server

    tied = partial(subprocess.Popen, preexec_fn=processes.tied_to_this_process())
    with open(Path(PREFECT_HOME.value()) / "server-start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with mock.patch("prefect.server.api.server.subprocess.Popen", tied):
            SubprocessASGIServer().start()


def started() -> None:
    """Before a local run's flow: the server up, and what killed runs left closed."""
    start_api_server_tied_to_this_process()
    mark_killed_runs_crashed()


@contextmanager
def pointing_to_full_log() -> Iterator[None]:
    """A failed flow run ends with its one-line reason; before it, where its errors are in
    full (logging.yml keeps them off the console)."""
    try:
        yield
    except Exception:
        print(console.full_log_line(Path(PREFECT_HOME.value()) / "prefect.log"), flush=True)
        raise
