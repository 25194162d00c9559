"""Dagster's webserver on a Unix socket, for the stack's authenticating proxy (nginx) only.

    python dagster/deployed/webserver.py SOCKET WORKSPACE_YAML     (supervisord.conf)

Dagster's open-source webserver has no login, and `dagster-webserver` serves only on a TCP
port, which every user of the machine can reach, loopback or not. This is what that command
does (dagster_webserver.cli: the instance of $DAGSTER_HOME, tuned for a long-running server;
a workspace process context on the workspace file; the webserver's own Starlette app), with
one difference: uvicorn serves the app on a Unix socket (`uds`, uvicorn's supported option)
in a 0700 folder, so only the owner's processes, the proxy among them, can connect. The
proxy asks for a password (HTTP basic auth) and passes requests on.

It uses two names from Dagster's internals (WorkspaceProcessContext, WorkspaceFileTarget):
the lock pins Dagster exactly, and a change there stops `make up` at this program's start.
"""

import logging
import sys

import uvicorn
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster_webserver.app import create_app_from_workspace_process_context
from dagster_webserver.version import __version__

from dagster import DagsterInstance

# dagster-webserver's defaults: --db-statement-timeout, --db-pool-recycle, --db-pool-max-overflow.
DB_STATEMENT_TIMEOUT_MS, DB_POOL_RECYCLE_S, DB_POOL_MAX_OVERFLOW = 15000, 3600, 20


def serve(socket_path: str, workspace: str) -> None:
    logging.basicConfig(level=logging.INFO)
    with DagsterInstance.get() as instance:
        instance.optimize_for_webserver(
            DB_STATEMENT_TIMEOUT_MS, DB_POOL_RECYCLE_S, DB_POOL_MAX_OVERFLOW
        )
        with WorkspaceProcessContext(
            instance,
            version=__version__,
            read_only=False,
            workspace_load_target=WorkspaceFileTarget(paths=[workspace]),
        ) as context:
            app = create_app_from_workspace_process_context(context)
            uvicorn.run(app, uds=socket_path, log_level="warning")


if __name__ == "__main__":
    serve(*sys.argv[1:3])
