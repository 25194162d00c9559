"""The stack's credentials: one secret per control surface, made at every cold `make up`.

They are kept only in the owner's 0600 state (`.state/stack/stack.env`, beside the ports),
handed to each service by supervisord's environment or a 0600 file the service reads, and
read back by the project's own commands, workers and tests from stack.env. Nothing prints
them: `make up` and `make status` say where they are. PostgreSQL's password is the one
exception to "fresh each time": it is made with the cluster (settings.pg_password).
"""

import secrets

USER = "etl"  # the user name where a surface wants one (Airflow, Dagster's proxy, Prefect)


def fresh() -> dict[str, str]:
    """New secrets for a stack about to start (hex: safe in URLs, configs and headers)."""
    return {
        # Prefect: the server's PREFECT_SERVER_API_AUTH_STRING, the clients'
        # PREFECT_API_AUTH_STRING (sent as HTTP basic auth, so "user:secret").
        "STACK_PREFECT_API_AUTH": f"{USER}:{secrets.token_hex(16)}",
        # Airflow: the simple auth manager's user and its password (passwords file, 0600).
        "STACK_AIRFLOW_USER": USER,
        "STACK_AIRFLOW_PASSWORD": secrets.token_hex(16),
        # Dagster: HTTP basic auth at the proxy in front of the webserver (htpasswd, 0600).
        "STACK_DAGSTER_USER": USER,
        "STACK_DAGSTER_PASSWORD": secrets.token_hex(16),
        # Redis: requirepass (redis.conf, 0600), carried in the Celery broker URL.
        "STACK_REDIS_PASSWORD": secrets.token_hex(16),
    }
