"""Airflow's settings, applied when this module is imported (parity/bootstrap.py says why).

Airflow reads its settings when it is imported, so adapter.py, and the DAG files that build
the declared pipelines' DAGs, import this first. The table depends on the process:

- adapter.py, run as a command: an Airflow of its own, its home .state/airflow-pipelines and
  its DAG folder airflow/pipeline_dags, whatever the caller set.
- the DAG file of airflow/pipeline_dags in another process (Airflow's DAG parser, a test's
  probe): the same, but only where unset, leaving that process's own settings alone.
- a process whose AIRFLOW_HOME is already set (the deployed stack's servers and workers,
  parsing airflow/deployed/pipeline_dags/): not its home or DAG folder, that Airflow's own.

For all, where unset: no examples, quiet logs; and not the warning that Airflow's in-process
execution API prints on stderr.
"""

import os
from pathlib import Path

from parity import bootstrap

HERE = Path(__file__).resolve().parent
PIPELINES_HOME = HERE.parent / ".state" / "airflow-pipelines"

SHARED = {"AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
# The in-process execution API imports starlette's test client, which warns on stderr.
WARNINGS = ("Using `httpx` with `starlette.testclient`",)
PIPELINES = {"AIRFLOW_HOME": PIPELINES_HOME, "AIRFLOW__CORE__DAGS_FOLDER": HERE / "pipeline_dags"}

match bootstrap.command(HERE):
    case "adapter.py":
        bootstrap.apply(SHARED, forced=PIPELINES, quiet=WARNINGS)
    case _ if "AIRFLOW_HOME" in os.environ:  # an Airflow of the caller's (the deployed stack's)
        bootstrap.apply(SHARED, quiet=WARNINGS)
    case _:  # the DAG file of airflow/pipeline_dags, in another process (a parser, a probe)
        bootstrap.apply({**PIPELINES, **SHARED}, quiet=WARNINGS)
