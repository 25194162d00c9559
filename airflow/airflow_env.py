"""Airflow's settings, applied when this module is imported (parity/bootstrap.py says why).

Airflow reads its settings when it is imported, so run.py and adapter.py import this first.
Each has an Airflow of its own, and the table is the command's:

- run.py, the events DAG: its state in .state/airflow, its DAG folder airflow/dags, staging
  in .state/staging; each only where the caller has not set it.
- adapter.py, any declared pipeline: .state/airflow-pipelines and airflow/pipeline_dags. Run
  as a command, its home and DAG folder are its own whatever the caller set (the events DAG
  keeps .state/airflow); imported by its DAG file in another Airflow process (Airflow's DAG
  parser, a test's probe), it leaves that process's settings alone and sets only what is unset;
  in a process whose AIRFLOW_HOME is already set (the deployed stack's servers and workers,
  parsing airflow/deployed/pipeline_dags/), not its DAG folder either: that Airflow's own.

For both, where unset: no examples, quiet logs; and not the warning that Airflow's in-process
execution API prints on stderr.
"""

import os
from pathlib import Path

from parity import bootstrap

HERE = Path(__file__).resolve().parent
STATE = HERE.parent / ".state"
EVENTS_HOME = STATE / "airflow"
PIPELINES_HOME = STATE / "airflow-pipelines"

SHARED = {"AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
# The in-process execution API imports starlette's test client, which warns on stderr.
WARNINGS = ("Using `httpx` with `starlette.testclient`",)


def airflow_of(home: Path, dags_folder: str) -> dict[str, Path]:
    """An Airflow of its own: its home, and its DAG folder (a folder beside this file)."""
    return {"AIRFLOW_HOME": home, "AIRFLOW__CORE__DAGS_FOLDER": Path(__file__).parent / dags_folder}


EVENTS = {**airflow_of(EVENTS_HOME, "dags"), **SHARED, "ETL_STAGING_ROOT": STATE / "staging"}
PIPELINES = airflow_of(PIPELINES_HOME, "pipeline_dags")

match bootstrap.command(HERE):
    case "run.py":
        bootstrap.apply(EVENTS, quiet=WARNINGS)
    case "adapter.py":
        bootstrap.apply(SHARED, forced=PIPELINES, quiet=WARNINGS)
    case _ if "AIRFLOW_HOME" in os.environ:  # an Airflow of the caller's (the deployed stack's)
        bootstrap.apply(SHARED, quiet=WARNINGS)
    case _:  # the DAG file of airflow/pipeline_dags, in another process (a parser, a probe)
        bootstrap.apply({**PIPELINES, **SHARED}, quiet=WARNINGS)
