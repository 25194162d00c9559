"""Talking to the stack's supervisord: start it, ask it over its Unix socket (XML-RPC, the
interface supervisorctl itself uses), shut it down and wait until it is gone."""

import contextlib
import os
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

from supervisor.xmlrpc import Faults, SupervisorTransport

from stack import layout
from stack.errors import StackError

BIN = Path(sys.executable).parent


def rpc() -> xmlrpc.client.ServerProxy:
    transport = SupervisorTransport(None, None, f"unix://{layout.SUPERVISOR_SOCKET}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def pid() -> int | None:
    """supervisord's pid while it runs, else None (a stale pid file is no supervisord)."""
    try:
        number = int(layout.SUPERVISORD_PID.read_text())
        cmdline = Path(f"/proc/{number}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return number if b"supervisord" in cmdline else None


def answers() -> bool:
    try:
        return rpc().supervisor.getState()["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Error):
        return False


def start(environment: dict[str, str], timeout: float) -> None:
    """supervisord daemonizes; return once it answers on its socket."""
    result = subprocess.run(
        [str(BIN / "supervisord"), "-c", str(layout.SUPERVISORD_CONF)],
        env=environment, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise StackError(f"supervisord {layout.SUPERVISORD_CONF} failed to start: {last}")
    deadline = time.monotonic() + timeout
    while not answers():
        if time.monotonic() > deadline:
            raise StackError(f"supervisord did not answer; see {layout.LOGS / 'supervisord.log'}")
        time.sleep(0.1)


def processes() -> list[dict]:
    return rpc().supervisor.getAllProcessInfo()


def state_of(name: str) -> str:
    return rpc().supervisor.getProcessInfo(name)["statename"]


def start_program(name: str) -> None:
    """Start one program and wait for supervisor's verdict (RUNNING after its startsecs)."""
    try:
        rpc().supervisor.startProcess(name, True)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode == Faults.ALREADY_STARTED:
            return
        info = rpc().supervisor.getProcessInfo(name)
        raise StackError(
            f"{name} did not start ({fault.faultString}); see {info['stdout_logfile']}"
        ) from None


def shutdown(timeout: float) -> None:
    """Ask supervisord to stop every program and itself, and wait until its process is gone."""
    number = pid()
    with contextlib.suppress(OSError, xmlrpc.client.Error):  # already on its way down
        rpc().supervisor.shutdown()
    deadline = time.monotonic() + timeout
    while number is not None and not _gone(number):
        if time.monotonic() > deadline:
            raise StackError(f"supervisord (pid {number}) did not stop within {timeout:.0f} s")
        time.sleep(0.1)


def _gone(number: int) -> bool:
    """Exited: no such process, or a zombie its parent has not reaped yet."""
    try:
        return Path(f"/proc/{number}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def status_lines() -> list[str]:
    """What `supervisorctl status` prints: a line per program."""
    result = subprocess.run(
        [str(BIN / "supervisorctl"), "-c", str(layout.SUPERVISORD_CONF), "status"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "HOME": str(layout.HOME)},
    )  # fmt: skip
    return result.stdout.splitlines()
