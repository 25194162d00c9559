"""The project's own PostgreSQL cluster: made once under `.state/stack/postgres`, run by
supervisord, one database per orchestrator.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` system
user (the machine's package creates it); as anyone else it is yours.
"""

import os
import shutil
import subprocess
import time
from collections.abc import Callable

from parity.registry import ORCHESTRATORS
from stack import layout
from stack.errors import StackError

# One database per orchestrator of the registry (the stack runs from the checkout, where
# `parity` imports with the standard library alone).
DATABASES = ORCHESTRATORS


def ensure_cluster(binaries: layout.Binaries, values: dict[str, str]) -> None:
    """initdb once; a half-made cluster (a killed `make up`) is made again from scratch,
    because initdb works in a side folder that is renamed into place only when complete."""
    if (layout.PG_DATA / "PG_VERSION").exists():
        _own(layout.PG_DATA)  # a cluster made by another user of this checkout stays usable
        return
    building = layout.PG_DATA.with_name("postgres.initdb")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(mode=0o700, parents=True)
    _own(building)
    # initdb reads the password from a file its user can open (not a pipe of ours).
    password_file = layout.STATE / "postgres.initdb.pw"
    password_file.unlink(missing_ok=True)
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(values["STACK_PG_PASSWORD"] + "\n")
    _own(password_file)
    try:
        result = subprocess.run(
            [str(binaries.pg_bindir / "initdb"), "-D", str(building),
             "-U", values["STACK_PG_USER"], f"--pwfile={password_file}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale"],
            capture_output=True, text=True, cwd=building, check=False, **_as_owner(),
        )  # fmt: skip
    finally:
        password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise StackError(f"initdb {building} failed: {last}")
    building.rename(layout.PG_DATA)


def _as_owner() -> dict:
    """subprocess arguments that run a command as the cluster's owner (only root switches)."""
    if os.getuid() != 0:
        return {}
    owner = layout.pg_os_user()
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


def _own(path: os.PathLike) -> None:
    """Give `path` (a file, or a folder and all it holds) to the cluster's owner."""
    if os.stat(path).st_uid != layout.pg_os_user().pw_uid:
        layout.give_to_service_user(path)  # os.walk yields nothing for a file
        for root, dirs, files in os.walk(path):
            for entry in dirs + files:
                layout.give_to_service_user(os.path.join(root, entry))


def wait_ready(
    binaries: layout.Binaries, values: dict[str, str], alive: Callable[[], bool], timeout: float
) -> None:
    """Until pg_isready says the server accepts connections (or it died, or time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        probe = subprocess.run(
            [str(binaries.pg_bindir / "pg_isready"), "-q", "-h", "127.0.0.1",
             "-p", values["STACK_PG_PORT"], "-t", "2"],
            check=False,
        )  # fmt: skip
        if probe.returncode == 0:
            return
        if not alive() or time.monotonic() > deadline:
            raise StackError(
                f"PostgreSQL did not accept connections; see {layout.LOGS / 'postgres.log'}"
            )
        time.sleep(0.2)


def psql(binaries: layout.Binaries, values: dict[str, str], sql: str, database: str) -> str:
    """One statement through psql over loopback TCP, rows as plain `|`-separated lines."""
    result = subprocess.run(
        [str(binaries.pg_bindir / "psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1",
         "-h", "127.0.0.1", "-p", values["STACK_PG_PORT"], "-U", values["STACK_PG_USER"],
         "-d", database, "-c", sql],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PGPASSWORD": values["STACK_PG_PASSWORD"], "PGCONNECT_TIMEOUT": "10"},
    )  # fmt: skip
    if result.returncode != 0:
        raise StackError(f"PostgreSQL: {sql!r} failed: {result.stderr.strip()}")
    return result.stdout


def ensure_databases(binaries: layout.Binaries, values: dict[str, str]) -> None:
    existing = set(psql(binaries, values, "SELECT datname FROM pg_database", "postgres").split())
    for name in DATABASES:
        if name not in existing:
            psql(binaries, values, f'CREATE DATABASE "{name}"', "postgres")
