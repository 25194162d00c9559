"""The Airflow DAG of the declared pipeline named by $PARITY_PIPELINE (a file or module), built
by airflow/pipeline_dag.py; Airflow's DAG processor (and the adapter's dag.test) find it here.
Unset: no DAG. airflow_env comes first: in a process of its own (a parser, a test's probe)
it gives this Airflow the adapter's settings, never $HOME's."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import airflow_env  # isort: split

from pipeline_dag import PIPELINE_VARIABLE, build_dag

from parity.loader import load

if os.environ.get(PIPELINE_VARIABLE):
    pipeline_dag = build_dag(load(os.environ[PIPELINE_VARIABLE])[0])
