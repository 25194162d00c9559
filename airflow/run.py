"""Run the events DAG the way `make` does, with the project's own Airflow state.

    python airflow/run.py --input-path IN --output-path OUT [--date YYYY-MM-DD]
    python airflow/run.py --input-path IN --start D1 --end D2 --output-dir DIR

One run is `dag.test()`: a real DAG run in Airflow's metadata database, its tasks executed in
this process (retries included), nothing left running. A backfill is Airflow's own: one DAG
run per logical date created by `airflow backfill create`, executed by a real scheduler with
the LocalExecutor and the API server its task workers report to, both started here on a
free loopback port under a watchdog that kills them (task workers included) when this
process ends, however it ends; the backfill is waited on with a bounded timeout.

Side by side (contract §9): a backfill holds the DAG's lock exclusively, a one run shares it
(dag_state.py), so a second backfill, or a run beside a backfill, waits with one line
saying so. Failed tasks leave their one-line error in XCom; the run ends with it.
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

# Airflow reads its settings when it is imported: airflow_env.py sets them (for this command:
# the events DAG's Airflow, in .state/airflow), so it comes first.
import airflow_env  # isort: split

sys.path.insert(0, str(Path(__file__).parent / "dags"))  # the events DAG's module
import dag_state
import events_daily_metrics as dag_module
from airflow.sdk.exceptions import AirflowFailException

import shared_etl
from parity import console, processes
from shared_etl.cli import run_command

STATE, HOME = airflow_env.STATE, airflow_env.EVENTS_HOME
DAG_ID = "events_daily_metrics"
BACKFILL_TIMEOUT_SECONDS = 600


def run_one(input_path: str, output_path: str, date: str | None) -> None:
    shared_etl.check_output_path(output_path)
    shared_etl.parse_date(date)
    _migrate_once()
    with dag_state.dag_lock(HOME, DAG_ID, exclusive=False, holder="airflow run"):
        dag_module.failures_seen.clear()
        conf = {"input_path": input_path, "output_path": output_path, "date": date}
        log = console.log_file(STATE, "airflow")
        with console.output_to(log):  # Airflow's task logs, tracebacks included
            run = dag_module.events_dag.test(run_conf=conf)
    if run.state == "success":
        return
    print(console.full_log_line(log), flush=True)
    for error in dag_module.failures_seen:
        cause = error.__cause__ if isinstance(error, AirflowFailException) else error
        if isinstance(cause, shared_etl.PipelineError):
            raise cause
    _raise_task_error([run.run_id], f"airflow dag run {run.run_id} ended {run.state}")


def run_backfill(input_path: str, start: str, end: str, output_dir: str) -> None:
    dates = shared_etl.dates_between(start, end)
    shared_etl.check_output_dir(output_dir)
    for day in dates:
        shared_etl.check_output_path(os.path.join(output_dir, f"{day}.parquet"))
    _migrate_once()
    environment = _service_environment()
    with dag_state.dag_lock(HOME, DAG_ID, exclusive=True, holder="airflow backfill"):
        _airflow(["dags", "reserialize"], environment)
        before = dag_state.newest_backfill_id(DAG_ID)
        older_logs = dag_state.task_logs(HOME / "logs", DAG_ID)
        # Created before the scheduler starts: on SQLite, under load, the CLI's inserts and a
        # starting scheduler's writes can lock each other out ("database is locked").
        conf = json.dumps({"input_path": input_path, "output_dir": output_dir})
        _airflow(
            ["backfill", "create", "--dag-id", DAG_ID, "--from-date", start, "--to-date", end,
             "--dag-run-conf", conf, "--reprocess-behavior", "completed",
             "--max-active-runs", "4"],
            environment,
        )  # fmt: skip
        backfill_id = dag_state.newest_backfill_id(DAG_ID)
        if backfill_id <= before:
            raise shared_etl.PipelineError(f"airflow backfill create made no backfill of {DAG_ID}")
        _airflow(["dags", "unpause", DAG_ID], environment)
        try:
            with _services(environment) as watchdog:
                states = _wait_for_backfill(backfill_id, watchdog, older_logs)
        finally:
            # Under the exclusive lock no other run needs the DAG unpaused.
            _airflow(["dags", "pause", DAG_ID], environment)
    for day in dates:
        print(f"airflow backfill: {day}: {states.get(day, 'missing')}")
    failed = [day for day in dates if states.get(day) != "success"]
    if failed:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session() as session:
            run_ids = [run.run_id for run in session.query(DagRun).filter(
                DagRun.backfill_id == backfill_id)]  # fmt: skip
        _raise_task_error(
            run_ids,
            f"airflow backfill {start}..{end}: runs not successful: "
            f"{ {day: states.get(day, 'missing') for day in failed} }; task logs in "
            f"{HOME / 'logs'}",
            prefix=f"airflow backfill {start}..{end}: {len(failed)} of {len(dates)} dates "
            f"failed ({', '.join(failed)}); first error: ",
        )


def _raise_task_error(run_ids: list[str], fallback: str, prefix: str = "") -> None:
    """End with the one-line error a failed task left in XCom, or `fallback` if none did."""
    errors = dag_state.run_errors(DAG_ID, run_ids)
    if not errors:
        raise shared_etl.PipelineError(fallback)
    _, error = min(errors, key=lambda found: found[0])  # the earliest date's
    failure = shared_etl.PipelineError(prefix + error["message"])
    failure.exit_code = int(error.get("exit_code", 1))
    raise failure


def _migrate_once() -> None:
    """`airflow db migrate` once per AIRFLOW_HOME and Airflow version (a few seconds); runs
    that start together wait for the first one's migration instead of racing it."""
    from airflow import __version__

    stamp = HOME / f".migrated-{__version__}"
    if stamp.exists():
        return
    with dag_state.file_lock(HOME / "migrate.lock"):
        if not stamp.exists():
            _airflow(["db", "migrate"], dict(os.environ))
            dag_state.register_bundles()
            stamp.touch()


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
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *arguments], env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=processes.tied_to_this_process(),
    )  # fmt: skip
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise shared_etl.PipelineError(
            f"airflow {arguments[0]} {arguments[1] if len(arguments) > 1 else ''} failed: "
            f"{lines[-1] if lines else f'exit status {result.returncode}'}"
        )


class _services:
    """API server and scheduler under service_watchdog.py: stopped at the end of the block,
    and killed by the watchdog if this process dies first."""

    def __init__(self, environment: dict[str, str]) -> None:
        self.environment = environment
        self.logs = HOME / "logs" / "services"

    def __enter__(self) -> subprocess.Popen:
        self.logs.mkdir(parents=True, exist_ok=True)
        python = [sys.executable, "-m", "airflow"]
        services = [
            {"argv": [*python, "api-server"], "log": str(self.logs / "api-server.log")},
            {"argv": [*python, "scheduler", "--skip-serve-logs"],
             "log": str(self.logs / "scheduler.log")},
        ]  # fmt: skip
        self.watchdog = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "service_watchdog.py"),
             json.dumps(services)],
            stdin=subprocess.PIPE, env=self.environment, start_new_session=True,
        )  # fmt: skip
        try:
            _wait_for_api(self.environment["AIRFLOW__API__PORT"], self.watchdog)
        except BaseException:
            self.__exit__()
            raise
        return self.watchdog

    def __exit__(self, *_) -> None:
        try:
            self.watchdog.stdin.write(b"stop")
            self.watchdog.stdin.close()
        except BrokenPipeError:
            pass
        self.watchdog.wait()


def _wait_for_api(port: str, watchdog: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and watchdog.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", int(port))) == 0:
                return
        time.sleep(0.5)
    raise shared_etl.PipelineError(
        f"airflow api-server did not listen on port {port} in {timeout} s "
        f"(log: {HOME / 'logs' / 'services' / 'api-server.log'})"
    )


def _wait_for_backfill(
    backfill_id: int, watchdog: subprocess.Popen, older_logs: set[Path]
) -> dict[str, str]:
    """Poll this backfill's own runs until the scheduler closes it, printing each change of
    state and each retry of its own (not in `older_logs`); bounded by
    BACKFILL_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + BACKFILL_TIMEOUT_SECONDS
    shown: dict[str, str] = {}
    retries_shown: set[tuple[str, str]] = set()
    while time.monotonic() < deadline:
        closed, states = dag_state.backfill_progress(backfill_id)
        for day, state in sorted(states.items()):
            if shown.get(day) != state:
                print(f"airflow backfill id {backfill_id}, {day}: {state}", flush=True)
        for day, line in dag_state.retry_lines(HOME / "logs", backfill_id, older_logs):
            if (day, line) not in retries_shown:
                retries_shown.add((day, line))
                print(f"airflow backfill id {backfill_id}, {day}: {line}", flush=True)
        shown = states
        if closed:
            return states
        if watchdog.poll() is not None:
            break
        time.sleep(1)
    raise shared_etl.PipelineError(
        f"airflow backfill {backfill_id} of {DAG_ID} not closed after "
        f"{BACKFILL_TIMEOUT_SECONDS} s (scheduler log: {HOME / 'logs' / 'services'})"
    )


if __name__ == "__main__":
    # A SIGTERM must still reach the `finally`s (lock, pause, staging) instead of killing us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    sys.exit(run_command("python airflow/run.py", __doc__, run_one, run_backfill))
