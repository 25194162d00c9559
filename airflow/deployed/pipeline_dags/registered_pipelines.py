"""The DAGs of the pipelines registered with the deployed stack (stack/pipelines.py), one per
pipeline, each built by airflow/pipeline_dag.py from its declaration.

The stack's one DAG bundle, `pipelines` (airflow/deployed/configure.py), is this folder, the
events pipeline's DAG included (`make up` registers it): its DAG processor parses this file,
and airflow/run_pipeline_deployed.py has it parsed at once (`airflow dags reserialize
--bundle-name pipelines`) after registering a pipeline; the Celery workers parse it too, to
run a task. A pipeline that fails to load (stack/pipelines.py) or to build is left out, with
a line on stderr, the others kept.
"""

import sys
from pathlib import Path

# pipeline_dag.py and airflow_env.py; stack/, from the checkout
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.append(str(Path(__file__).resolve().parents[3]))

import airflow_env  # isort: split

from pipeline_dag import build_dag

from parity.errors import PipelineError
from stack.pipelines import registered

for _name, _pipeline in registered().items():
    try:
        globals()[f"{_name}_dag"] = build_dag(_pipeline)
    except PipelineError as _exc:
        print(f"stack pipelines: {_name}: left out of Airflow: {_exc}", file=sys.stderr)
