"""The Airflow DAG of the declared pipeline named by $PARITY_PIPELINE (a file or module), built
by airflow/adapter.py; Airflow's DAG processor (and dag.test) find it here. Unset: no DAG."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapter import PIPELINE_VARIABLE, build_dag

from parity.loader import load

if os.environ.get(PIPELINE_VARIABLE):
    pipeline_dag = build_dag(load(os.environ[PIPELINE_VARIABLE])[0])
