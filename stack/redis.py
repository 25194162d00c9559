"""The stack's Redis (the Celery broker): its config file, and waiting until it answers.

The password (`requirepass`) is in a 0600 config file rather than on the command line,
because every user can read a process's command line in /proc; redis-cli gets it from
REDISCLI_AUTH, not `-a`, for the same reason. Redis needs no root: when `make up` runs as
root it runs as PostgreSQL's system user (supervisord.conf), so its 0700 folder and its
0600 config belong to that user.
"""

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from stack import layout
from stack.errors import StackError

CONFIG = layout.REDIS_DIR / "redis.conf"


def config_text(values: dict[str, str]) -> str:
    """Loopback only, nothing saved (a broker keeps nothing worth a restart), a password."""
    return (
        "# Written by `make up` (stack/redis.py); rewritten at each cold start.\n"
        f"bind 127.0.0.1\nport {values['STACK_REDIS_PORT']}\nprotected-mode yes\n"
        f'dir {layout.REDIS_DIR}\nsave ""\nappendonly no\n'
        f"requirepass {values['STACK_REDIS_PASSWORD']}\n"
    )


def write_config(values: dict[str, str], path: Path = CONFIG) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(config_text(values))
    layout.give_to_service_user(temporary)
    temporary.replace(path)
    layout.give_to_service_user(path.parent)  # Redis's working directory


def cli(redis_cli: Path, values: dict[str, str], *command: str, password: str | None = None):
    """redis-cli against the stack's Redis, authenticated with the stack's password (or
    `password`), through the environment so no command line shows it."""
    secret = values["STACK_REDIS_PASSWORD"] if password is None else password
    return subprocess.run(
        [str(redis_cli), "--no-auth-warning", "-h", "127.0.0.1",
         "-p", values["STACK_REDIS_PORT"], *command],
        capture_output=True, text=True, check=False,
        env={**os.environ, "REDISCLI_AUTH": secret},
    )  # fmt: skip


def wait_ready(
    redis_cli: Path, values: dict[str, str], alive: Callable[[], bool], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while cli(redis_cli, values, "ping").stdout.strip() != "PONG":
        if not alive() or time.monotonic() > deadline:
            raise StackError(f"Redis did not answer PING; see {layout.LOGS / 'redis.log'}")
        time.sleep(0.1)
