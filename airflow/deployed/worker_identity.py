"""The name a Celery worker's task instances are recorded under (`[core] hostname_callable`).

Both workers of the stack run on one machine, so the default (the machine's FQDN) would not
tell them apart in Airflow's records; `worker-N@host`, as Celery names them, does. Set for
the worker programs in supervisord.conf with AIRFLOW_WORKER_NAME.
"""

import os
import socket


def hostname() -> str:
    return f"{os.environ.get('AIRFLOW_WORKER_NAME', 'worker')}@{socket.getfqdn()}"
