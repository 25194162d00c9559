"""Write the deployed Airflow's `$AIRFLOW_HOME/airflow.cfg` from the stack's settings.

    python airflow/deployed/configure.py        (a `make up` step: airflow/deployed/stack.toml)

Airflow's own idiom: every service reads one airflow.cfg. The ports and the database
password change with each `make up`, so the file is written here from the stack's settings
(the STACK_* and AIRFLOW_PORT variables `make up` gives each step), readable only by you.
What it sets, and why:
  - PostgreSQL (`airflow` database) for metadata, the CeleryExecutor with Redis as broker and
    PostgreSQL as result backend, two Celery workers (supervisord.conf) of 2 slots each;
  - no schedule-made runs (`use_job_schedule = False`): only triggered runs and backfills, so
    unpausing the DAG never starts a run nobody asked for;
  - the simple auth manager with one user, `STACK_AIRFLOW_USER` (admin), whose password
    (`STACK_AIRFLOW_PASSWORD`, made at `make up`) is in a 0600 passwords file here: not "all
    admins", so the UI asks for a login and POST /auth/token gives a token only for the
    password (loopback is not private: every user of the machine can reach the port);
  - logs and state in the project, examples off, and one DAG bundle, `pipelines`: the DAGs of
    the pipelines registered with the stack (stack/pipelines.py; `make up` registers the
    events pipeline, so its DAG `events_daily_metrics` is there from the start).
"""

import configparser
import io
import json
import os
import secrets
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent.parent
PASSWORDS_FILE = "simple_auth_manager_passwords.json"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
PIPELINES_BUNDLE = "pipelines"  # airflow/run_pipeline_deployed.py has it reserialized
PIPELINE_DAGS = PROJECT / "airflow" / "deployed" / "pipeline_dags"
BUNDLES = json.dumps([
    {"name": PIPELINES_BUNDLE, "classpath": LOCAL_BUNDLE,
     "kwargs": {"path": str(PIPELINE_DAGS), "refresh_interval": 0}},
])  # fmt: skip


def _write_private(path: Path, text: str) -> None:
    """`text` into `path`, readable only by you, replaced in one step."""
    temporary = path.with_name(path.name + ".tmp")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(text)
    temporary.replace(path)


def settings(environment: dict[str, str]) -> dict[str, dict[str, str]]:
    home = environment["AIRFLOW_HOME"]
    port = environment["AIRFLOW_PORT"]
    user, password = environment["STACK_PG_USER"], environment["STACK_PG_PASSWORD"]
    database = f"{user}:{password}@127.0.0.1:{environment['STACK_PG_PORT']}/airflow"
    return {
        "core": {
            "dags_folder": str(PIPELINE_DAGS),
            "executor": "CeleryExecutor",
            "load_examples": "False",
            "parallelism": "8",
            "execution_api_server_url": f"http://127.0.0.1:{port}/execution/",
            "auth_manager": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "simple_auth_manager_users": f"{environment['STACK_AIRFLOW_USER']}:admin",
            "simple_auth_manager_all_admins": "False",
            "simple_auth_manager_passwords_file": str(Path(home) / PASSWORDS_FILE),
        },
        "database": {"sql_alchemy_conn": f"postgresql+psycopg2://{database}"},
        "celery": {
            "broker_url": (
                f"redis://:{environment['STACK_REDIS_PASSWORD']}"
                f"@127.0.0.1:{environment['STACK_REDIS_PORT']}/0"
            ),
            "result_backend": f"db+postgresql://{database}",
            "worker_concurrency": "2",
        },
        "api": {"host": "127.0.0.1", "port": port, "workers": "1"},
        "api_auth": {"jwt_secret": secrets.token_hex(32)},
        "scheduler": {"use_job_schedule": "False", "scheduler_heartbeat_sec": "1"},
        # One DAG bundle: the registered pipelines' DAGs (airflow/deployed/pipeline_dags/,
        # read from the stack's registry).
        "dag_processor": {"refresh_interval": "30", "dag_bundle_config_list": BUNDLES},
        "logging": {
            "base_log_folder": str(Path(home) / "logs"),
            "logging_level": "INFO",
        },
    }


def main() -> None:
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    config = configparser.ConfigParser(interpolation=None)
    config.read_dict(settings(dict(os.environ)))
    text = io.StringIO()
    text.write("# Written by airflow/deployed/configure.py at `make up`; rewritten each time.\n")
    config.write(text)
    _write_private(home / "airflow.cfg", text.getvalue())
    # The simple auth manager's own format: {"user": "password"}; it adds none while ours is there.
    user, password = os.environ["STACK_AIRFLOW_USER"], os.environ["STACK_AIRFLOW_PASSWORD"]
    _write_private(home / PASSWORDS_FILE, json.dumps({user: password}) + "\n")
    print(f"wrote {home / 'airflow.cfg'} and {home / PASSWORDS_FILE}")


if __name__ == "__main__":
    main()
