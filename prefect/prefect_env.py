"""Prefect's settings, applied when this module is imported (parity/bootstrap.py says why).

Prefect reads its settings when it is imported: every module of prefect/ that imports Prefect
imports this first. Which table applies is the command's:

- run_pipeline_deployed.py is a client of the deployed stack's `prefect server`: its address
  and the auth string made at `make up`, the client's state in the stack's folder. Always
  set: the stack decides them.
- Everything else (adapter.py, and deployed_pipelines.py in a deployed worker's flow-run
  process or in `prefect deploy` at `make up`) keeps Prefect's state and logs in the project,
  no telemetry, loopback only; each only where the caller has not set it.
"""

import os
import sys
from pathlib import Path

from parity import bootstrap

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
STATE = PROJECT / ".state"

LOCAL = {
    "PREFECT_HOME": STATE / "prefect",
    "PREFECT_LOGGING_CONFIG_PATH": Path(__file__).with_name("logging.yml"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "NO_PROXY": "127.0.0.1,localhost",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "ETL_STAGING_ROOT": STATE / "staging",
}


def running_stack() -> dict[str, str]:
    """The settings of the running stack (stack.env, made at `make up`), read by the checkout's
    stack/settings.py (after what is installed). With no stack up, the command ends with one
    line saying so."""
    sys.path.append(str(PROJECT))
    from stack import settings

    return settings.running()


def stack_client(stack: dict[str, str]) -> dict[str, str]:
    return {
        "PREFECT_API_URL": f"http://127.0.0.1:{stack['PREFECT_PORT']}/api",
        "PREFECT_API_AUTH_STRING": stack["STACK_PREFECT_API_AUTH"],
        "PREFECT_HOME": str(STATE / "stack" / "prefect"),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "DO_NOT_TRACK": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }


STACK: dict[str, str] = {}  # the running stack's settings, in run_pipeline_deployed.py only
if bootstrap.command(HERE) == "run_pipeline_deployed.py":
    STACK = running_stack()
    bootstrap.apply(forced=stack_client(STACK))
else:
    bootstrap.apply(LOCAL)
    # Prefect creates its home without parents: on a fresh clone .state/ does not exist yet.
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
