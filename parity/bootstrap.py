"""The environment a wrapper sets before it imports its orchestrator, written once.

Prefect and Airflow read their settings from the environment when they are imported (Dagster
when it opens its instance), so a wrapper sets them first. Code above an import is what
ruff's E402 forbids; so each orchestrator folder has one settings module (prefect/prefect_env.py,
dagster/dagster_env.py, airflow/airflow_env.py) that holds that orchestrator's tables and
applies them with `apply` when it is imported. A wrapper imports it in an import block of its
own (`# isort: split`), before every import that loads the orchestrator.

A folder's commands need different settings (prefect/adapter.py runs an in-process Prefect;
prefect/run_pipeline_deployed.py talks to the deployed stack's), and the module
is imported once per process: it picks the table of the command the process runs (`command`).
Like all of parity this imports no orchestrator.
"""

import os
import sys
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

Settings = Mapping[str, str | os.PathLike[str]]


def apply(defaults: Settings | None = None, *, forced: Settings | None = None,
          quiet: Iterable[str] = ()) -> None:  # fmt: skip
    """Set each of `defaults` that the caller's environment has not set, and each of `forced`
    whatever it has; from now on ignore the warnings whose message starts with one of `quiet`
    (a regular expression, as `warnings.filterwarnings` takes it)."""
    for name, value in (defaults or {}).items():
        os.environ.setdefault(name, str(value))
    for name, value in (forced or {}).items():
        os.environ[name] = str(value)
    for message in quiet:
        warnings.filterwarnings("ignore", message=message)


def command(folder: Path) -> str | None:
    """The file name of the program this process runs, when that program is a file of `folder`
    (`python folder/<name>.py`); None otherwise: a test's `python -c`, an orchestrator's own
    process that imported the folder's module (a deployed worker, Airflow's DAG parser)."""
    program = getattr(sys.modules.get("__main__"), "__file__", None)
    if program is None:
        return None
    path = Path(program).resolve()
    return path.name if path.parent == folder.resolve() else None
