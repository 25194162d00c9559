"""Where the stack keeps everything, and which machine binaries it runs.

All state is under `.state/stack/` in the project; nothing is written to `$HOME`.
"""

import glob
import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from stack.errors import StackError

PROJECT = Path(__file__).resolve().parent.parent
STATE = PROJECT / ".state" / "stack"
LOGS = STATE / "logs"
ENV_FILE = STATE / "stack.env"  # the chosen ports and credentials, while the stack is up
PG_DATA = STATE / "postgres"
PG_PASSWORD_FILE = STATE / "postgres.password"
REDIS_DIR = STATE / "redis"
HOME = STATE / "home"  # $HOME of every supervised program
DAGSTER_HOME = STATE / "dagster"  # its code server's Unix socket is there
# Yours alone (0700): what the services log, their $HOME, and the folders of their sockets
# and 0600 configs. PostgreSQL's own folder is 0700 too, owned by its user (initdb).
PRIVATE_FOLDERS = (LOGS, HOME, REDIS_DIR, DAGSTER_HOME)
SUPERVISORD_CONF = PROJECT / "stack" / "supervisord.conf"
SUPERVISORD_PID = STATE / "supervisord.pid"
SUPERVISOR_SOCKET = STATE / "supervisor.sock"

# PostgreSQL refuses to run as root: as root, its cluster belongs to this system user, and
# Redis and Dagster's login proxy (nginx), which need no root either, run as it too.
PG_OS_USER_FOR_ROOT = "postgres"


@dataclass(frozen=True)
class Binaries:
    pg_bindir: Path  # initdb, postgres, pg_isready, psql
    redis_server: Path
    redis_cli: Path


def find_binaries() -> Binaries:
    """The machine's PostgreSQL (newest major under /usr/lib/postgresql, or $STACK_PG_BINDIR)
    and Redis; a missing one is named with the package that provides it."""
    pg_bindir = os.environ.get("STACK_PG_BINDIR") or _newest_postgres_bindir()
    if not pg_bindir or not (Path(pg_bindir) / "initdb").exists():
        raise StackError(
            "PostgreSQL server binaries not found (initdb, postgres): "
            "install them with `apt-get install postgresql` (or set STACK_PG_BINDIR)"
        )
    redis_server, redis_cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not redis_server or not redis_cli:
        raise StackError("redis-server not found: install it with `apt-get install redis-server`")
    return Binaries(Path(pg_bindir), Path(redis_server), Path(redis_cli))


def _newest_postgres_bindir() -> str | None:
    found = glob.glob("/usr/lib/postgresql/*/bin")
    return max(found, key=lambda path: int(Path(path).parent.name), default=None)


def pg_os_user() -> pwd.struct_passwd:
    """The system user PostgreSQL, Redis and nginx run as: yourself, or `postgres` when you
    are root (supervisord's `user=` switches to it)."""
    if os.getuid() != 0:
        return pwd.getpwuid(os.getuid())
    try:
        return pwd.getpwnam(PG_OS_USER_FOR_ROOT)
    except KeyError:
        raise StackError(
            f"running as root needs the system user `{PG_OS_USER_FOR_ROOT}` for PostgreSQL: "
            "`apt-get install postgresql` creates it"
        ) from None


def give_to_service_user(path: os.PathLike) -> None:
    """Make `path` the service user's (pg_os_user) if it is not yet: what a service running
    as that user reads or writes (as root; otherwise that user is you, and it is yours)."""
    owner = pg_os_user()
    if os.stat(path).st_uid != owner.pw_uid:
        os.chown(path, owner.pw_uid, owner.pw_gid)
