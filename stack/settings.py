"""The stack's settings: free loopback ports chosen at `make up`, every service's credentials,
and the environment every supervised program and start-up step receives.

They are written to `.state/stack/stack.env` (KEY=value lines) while the stack is up, so the
deployed-mode wrappers and the tests read the same values supervisord was given.
"""

import os
import secrets
import socket
import sys
from pathlib import Path

from stack import credentials, layout

PG_USER = "etl"
# Variables passed through from the caller; everything else a program sees is set here, so a
# caller's ETL_FAIL_ATTEMPTS, proxy or $HOME never leaks into a long-running service.
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME")
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


def free_port() -> int:
    """A port nothing listens on now, on 127.0.0.1 (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pg_password() -> str:
    """The cluster's superuser password: made once with the cluster, kept beside it."""
    if not layout.PG_PASSWORD_FILE.exists():
        layout.PG_PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(layout.PG_PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(16))
    return layout.PG_PASSWORD_FILE.read_text().strip()


def choose(binaries: layout.Binaries, extra_ports: list[str]) -> dict[str, str]:
    """Fresh settings for a stack about to start: a free port for PostgreSQL, Redis and each
    name in `extra_ports` (declared by the orchestrators' stack.toml), and new credentials."""
    values = {
        "STACK_PROJECT": str(layout.PROJECT),
        "STACK_STATE": str(layout.STATE),
        "STACK_LOGS": str(layout.LOGS),
        "STACK_PG_BINDIR": str(binaries.pg_bindir),
        "STACK_PG_OS_USER": layout.pg_os_user().pw_name,
        "STACK_PG_HOST": "127.0.0.1",
        "STACK_PG_PORT": str(free_port()),
        "STACK_PG_USER": PG_USER,
        "STACK_PG_PASSWORD": pg_password(),
        "STACK_REDIS_SERVER": str(binaries.redis_server),
        "STACK_REDIS_PORT": str(free_port()),
        **credentials.fresh(),
    }
    for name in extra_ports:
        values[name] = str(free_port())
    return values


def write(values: dict[str, str]) -> None:
    """Record the settings, readable only by you (they hold every credential)."""
    text = "".join(f"{name}={value}\n" for name, value in values.items())
    temporary = layout.ENV_FILE.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    temporary.replace(layout.ENV_FILE)


def running() -> dict[str, str]:
    """The settings of the stack a deployed-mode command talks to (each orchestrator's
    run_pipeline_deployed.py imports this module from the checkout: it needs nothing beyond
    the standard library). With no stack up, the command ends with one line saying so and
    what to run."""
    values = read()
    if not values:
        sys.exit(f"error: the deployed stack is not running ({layout.ENV_FILE} missing): make up")
    return values


def read(path: Path = layout.ENV_FILE) -> dict[str, str]:
    """The settings of the running stack (empty when it was never started)."""
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def program_environment(values: dict[str, str]) -> dict[str, str]:
    """The environment supervisord and every start-up step run with: the settings, a $HOME
    inside the stack's state, telemetry and proxies off, and little else from the caller."""
    passed = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    return {**passed, **TELEMETRY_OFF, "HOME": str(layout.HOME), **values}
