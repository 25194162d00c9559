"""Run the events DAG the way `make` does, with the project's own Airflow state.

    python airflow/run.py --input-path IN --output-path OUT [--date YYYY-MM-DD]
    python airflow/run.py --input-path IN --start D1 --end D2 --output-dir DIR

One run is `dag.test()`: a real DAG run in Airflow's metadata database, its tasks executed in
this process (retries included), nothing left running. A backfill is Airflow's own: one DAG
run per logical date created by `airflow backfill create`, executed by a real scheduler with
the LocalExecutor and the API server its task workers report to, both started here on a
free loopback port, waited on with a bounded timeout and stopped (process groups) at the end.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
STATE = PROJECT / ".state"
HOME = STATE / "airflow"
DAG_ID = "events_daily_metrics"
BACKFILL_TIMEOUT_SECONDS = 600

# Airflow reads its settings at import: state in the project, no examples, quiet logs.
for _name, _value in {
    "AIRFLOW_HOME": str(HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).parent / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    "ETL_STAGING_ROOT": str(STATE / "staging"),
}.items():
    os.environ.setdefault(_name, _value)

sys.path.insert(0, str(Path(__file__).parent / "dags"))

import events_daily_metrics as dag_module  # noqa: E402
from airflow.sdk.exceptions import AirflowFailException  # noqa: E402

import shared_etl  # noqa: E402
from shared_etl.cli import run_command  # noqa: E402


def run_one(input_path: str, output_path: str, date: str | None) -> None:
    shared_etl.check_output_path(output_path)
    shared_etl.parse_date(date)
    _migrate_once()
    dag_module.failures_seen.clear()
    conf = {"input_path": input_path, "output_path": output_path, "date": date}
    run = dag_module.events_dag.test(run_conf=conf)
    if run.state == "success":
        return
    for error in dag_module.failures_seen:
        cause = error.__cause__ if isinstance(error, AirflowFailException) else error
        if isinstance(cause, shared_etl.PipelineError):
            raise cause
    raise shared_etl.PipelineError(f"airflow dag run {run.run_id} ended {run.state}")


def run_backfill(input_path: str, start: str, end: str, output_dir: str) -> None:
    dates = shared_etl.dates_between(start, end)
    _migrate_once()
    environment = _service_environment()
    _airflow(["dags", "reserialize"], environment)
    _airflow(["dags", "unpause", DAG_ID], environment)
    # A SIGTERM must still reach the `finally` below, or the services would outlive us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    services: list[subprocess.Popen] = []
    try:
        if _closed_backfill_states() is None:  # left open by a killed run: let it close first
            _start_services(environment, services)
            _wait_for_backfills_to_close()
        # Created before the scheduler starts: on SQLite, under load, the CLI's inserts and a
        # starting scheduler's writes can lock each other out ("database is locked").
        conf = json.dumps({"input_path": input_path, "output_dir": output_dir})
        _airflow(
            ["backfill", "create", "--dag-id", DAG_ID, "--from-date", start, "--to-date", end,
             "--dag-run-conf", conf, "--reprocess-behavior", "completed",
             "--max-active-runs", "4"],
            environment,
        )  # fmt: skip
        if not services:
            _start_services(environment, services)
        states = _wait_for_backfills_to_close()
    finally:
        for service in services:
            _stop(service)
        _airflow(["dags", "pause", DAG_ID], environment)
    for day in dates:
        print(f"airflow backfill: {day}: {states.get(day, 'missing')}")
    failed = {day: states.get(day, "missing") for day in dates if states.get(day) != "success"}
    if failed:
        raise shared_etl.PipelineError(
            f"airflow backfill {start}..{end}: runs not successful: {failed}; task logs in "
            f"{HOME / 'logs'}"
        )


def _migrate_once() -> None:
    """`airflow db migrate` the first time this AIRFLOW_HOME is used (a few seconds)."""
    if not (HOME / "airflow.db").exists():
        _airflow(["db", "migrate"], dict(os.environ))


def _service_environment() -> dict[str, str]:
    """Scheduler and API server on loopback, sharing a one-off secret for task tokens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    return {
        **os.environ,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": port,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        # Only backfill runs: no run for the schedule's latest interval while unpaused.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    }


def _airflow(arguments: list[str], environment: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "airflow", *arguments], env=environment, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def _start(arguments: list[str], environment: dict[str, str], name: str) -> subprocess.Popen:
    log = HOME / "logs" / "services" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "airflow", *arguments], env=environment,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _start_services(environment: dict[str, str], services: list[subprocess.Popen]) -> None:
    """API server and scheduler, added to `services` as they start so that all get stopped."""
    services.append(_start(["api-server"], environment, "api-server"))
    services.append(_start(["scheduler", "--skip-serve-logs"], environment, "scheduler"))
    _wait_for_api(environment["AIRFLOW__API__PORT"])


def _wait_for_api(port: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", int(port))) == 0:
                return
        time.sleep(0.5)
    raise shared_etl.PipelineError(
        f"airflow api-server did not listen on port {port} in {timeout} s"
    )


def _closed_backfill_states() -> dict[str, str] | None:
    """The state of the newest backfill's runs by date, or None while any backfill of the DAG
    is still open. Read from Airflow's own database."""
    from airflow.models.backfill import Backfill
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        backfills = session.query(Backfill).filter(Backfill.dag_id == DAG_ID).all()
        if any(backfill.completed_at is None for backfill in backfills):
            return None
        newest = max(backfills, key=lambda backfill: backfill.id, default=None)
        runs = session.query(DagRun).filter(DagRun.backfill_id == newest.id).all() \
            if newest else []  # fmt: skip
        return {run.logical_date.date().isoformat(): str(run.state) for run in runs}


def _wait_for_backfills_to_close() -> dict[str, str]:
    """Poll until the scheduler has closed every backfill of the DAG, with a bounded timeout."""
    deadline = time.monotonic() + BACKFILL_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        states = _closed_backfill_states()
        if states is not None:
            return states
        time.sleep(1)
    raise shared_etl.PipelineError(
        f"airflow backfill of {DAG_ID} not closed after {BACKFILL_TIMEOUT_SECONDS} s"
    )


def _stop(service: subprocess.Popen) -> None:
    """SIGTERM the service's whole process group (its task workers too), then SIGKILL."""
    try:
        os.killpg(service.pid, signal.SIGTERM)
        service.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(service.pid, signal.SIGKILL)
        service.wait()
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(run_command("python airflow/run.py", __doc__, run_one, run_backfill))
