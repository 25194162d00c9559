"""The events DAG run on the deployed stack's Airflow (MODE=deployed), through its REST API v2.

    python airflow/run_deployed.py --input-path IN --output-path OUT [--date YYYY-MM-DD]
    python airflow/run_deployed.py --input-path IN --start D1 --end D2 --output-dir DIR

The same flags, outputs, exit statuses and one-line errors as airflow/run.py, but nothing
runs here: one run is a DAG run triggered with its conf (POST /dags/{id}/dagRuns), a
backfill is an Airflow backfill (POST /backfills, what `airflow backfill create` does), and
the stack's scheduler hands their task instances through Redis to whichever of the two
Celery workers is free. This follows the runs until they end, printing each change of state
and each retry, within AIRFLOW_DEPLOYED_TIMEOUT seconds (default 900); a run that does not
end in time, or whose driver is stopped (Ctrl-C, SIGTERM), is marked failed.

What the workers need from this process travels in the run's conf: absolute paths (made
here, against the caller's working directory as in local mode), and under "env" the
variables the tasks set for themselves: ETL_FAIL_ATTEMPTS when set, and ETL_STAGING_ROOT,
the staging area this command holds (shared_etl.cli), so a run's staged files are removed
when its command ends, and cleared by a later run if the command is killed — as in local
mode. A second backfill of the DAG waits for the open one (Airflow allows one at a time).
"""

import fcntl
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import shared_etl
from parity import console
from shared_etl.cli import run_command

# stack/settings.py, from the checkout (after what is installed)
sys.path.append(str(Path(__file__).resolve().parent.parent))
from stack import layout, settings

DAG_ID = "events_daily_metrics"
BACKFILL_LOCK = layout.STATE / f"{DAG_ID}.backfill.lock"
TASKS = ("prepare", "aggregate")
ERROR_KEY = "error"  # the XCom a failing task leaves its one-line error under (the DAG file)
TIMEOUT = float(os.environ.get("AIRFLOW_DEPLOYED_TIMEOUT", "900"))
POLL_SECONDS = 1.0
FINISHED = {"success", "failed"}
# Loopback only: a proxy from the caller's environment must never see these requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class AirflowApi:
    """The stack's Airflow REST API v2, with a token the simple auth manager gives for the
    stack's user and password (stack.env, made at `make up`), for the DAG `dag_id`."""

    def __init__(self, dag_id: str = DAG_ID) -> None:
        self.dag_id = dag_id
        stack = settings.running()
        self.base = f"http://127.0.0.1:{stack['AIRFLOW_PORT']}"
        login = {"username": stack["STACK_AIRFLOW_USER"],
                 "password": stack["STACK_AIRFLOW_PASSWORD"]}  # fmt: skip
        self.token = self.request("POST", "/auth/token", login, authorised=False)["access_token"]

    def request(self, method: str, path: str, body: dict | None = None, *,
                authorised: bool = True) -> dict:  # fmt: skip
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if authorised:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with _OPENER.open(request, timeout=60) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise ApiError(error.code, f"{method} {path}: HTTP {error.code}: "
                                       f"{_detail(error.read())}") from None  # fmt: skip
        except OSError as error:
            raise shared_etl.PipelineError(
                f"airflow api-server {self.base} did not answer {method} {path}: {error}"
            ) from None


class ApiError(shared_etl.PipelineError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _detail(body: bytes) -> str:
    try:
        detail = json.loads(body).get("detail", body.decode())
    except (ValueError, AttributeError):
        detail = body.decode(errors="replace")
    return " ".join(str(detail).split())


def run_one(input_path: str, output_path: str, date: str | None) -> None:
    shared_etl.check_output_path(output_path)
    shared_etl.parse_date(date)
    api = _ready_api()
    conf = {
        "input_path": os.path.abspath(input_path),
        "output_path": os.path.abspath(output_path),
        "date": date,
        "env": _task_environment(),
    }
    body = {"logical_date": None, "conf": conf}
    run = api.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", body)
    run_id = run["dag_run_id"]
    _say(f"triggered dag run {run_id} ({api.base}/dags/{DAG_ID}/runs/{run_id})")
    states = _follow(api, [run_id])
    if states[run_id] != "success":
        raise _task_error(api, [run_id], f"airflow dag run {run_id} ended {states[run_id]}")


def run_backfill(input_path: str, start: str, end: str, output_dir: str) -> None:
    dates = shared_etl.dates_between(start, end)
    shared_etl.check_output_dir(output_dir)
    for day in dates:
        shared_etl.check_output_path(os.path.join(output_dir, f"{day}.parquet"))
    api = _ready_api()
    conf = {
        "input_path": os.path.abspath(input_path),
        "output_dir": os.path.abspath(output_dir),
        "env": _task_environment(),
    }
    body = {
        "dag_id": DAG_ID, "from_date": f"{start}T00:00:00Z", "to_date": f"{end}T00:00:00Z",
        "dag_run_conf": conf, "reprocess_behavior": "completed", "max_active_runs": 4,
    }  # fmt: skip
    run_ids = [f"backfill__{day}T00:00:00+00:00" for day in dates]
    with _backfill_turn():
        backfill = _create_backfill(api, body)
        _say(f"backfill {backfill['id']} of {start}..{end} created ({api.base}/dags/{DAG_ID})")
        states = _follow(api, run_ids, backfill_id=backfill["id"])
    for day, run_id in zip(dates, run_ids, strict=True):
        print(f"airflow backfill: {day}: {states.get(run_id, 'missing')}")
    failed = [day for day, run in zip(dates, run_ids, strict=True) if states[run] != "success"]
    if failed:
        raise _task_error(
            api, run_ids,
            f"airflow backfill {start}..{end}: runs not successful: {failed}",
            prefix=f"airflow backfill {start}..{end}: {len(failed)} of {len(dates)} dates "
            f"failed ({', '.join(failed)}); first error: ",
        )  # fmt: skip


def _ready_api(dag_id: str = DAG_ID) -> AirflowApi:
    """The API, once the DAG processor has parsed the DAG; the DAG unpaused (it is created
    paused; the stack's scheduler makes no runs of its own: use_job_schedule is off)."""
    api = AirflowApi(dag_id)
    deadline = time.monotonic() + 180
    while True:
        try:
            dag = api.request("GET", f"/api/v2/dags/{api.dag_id}")
            break
        except ApiError as error:
            if error.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(POLL_SECONDS)
    if dag.get("is_paused"):
        api.request("PATCH", f"/api/v2/dags/{api.dag_id}", {"is_paused": False})
    return api


def _task_environment() -> dict[str, str]:
    names = ("ETL_FAIL_ATTEMPTS", "ETL_STAGING_ROOT")
    return {name: os.environ[name] for name in names if os.environ.get(name)}


@contextmanager
def _backfill_turn() -> Iterator[None]:
    """Hold the DAG's backfill lock from before the POST until the backfill is closed.

    Airflow checks for an open backfill and creates one in two steps: two POSTs at once both
    pass the check and one fails with a database error (HTTP 500). Two backfills from this
    project therefore take turns on an flock (dropped by the kernel if a command is killed);
    one from elsewhere still gets Airflow's HTTP 409, which _create_backfill waits out.
    """
    with open(BACKFILL_LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say_waiting()
            _wait_for_lock(lock)
        yield


def _wait_for_lock(lock) -> None:
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            return fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise shared_etl.PipelineError(
                    f"airflow: another backfill of {DAG_ID} is still open after {TIMEOUT:.0f} s"
                ) from None
            time.sleep(POLL_SECONDS)


def _say_waiting() -> None:
    print(f"airflow backfill: waiting for the open backfill of {DAG_ID} to end "
          f"(at most {TIMEOUT:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip


def _create_backfill(api: AirflowApi, body: dict) -> dict:
    """POST the backfill; while another backfill of the DAG is open (HTTP 409), wait."""
    deadline = time.monotonic() + TIMEOUT
    waiting = False
    while True:
        try:
            return api.request("POST", "/api/v2/backfills", body)
        except ApiError as error:
            if error.status != 409 or "backfill" not in str(error).lower():
                raise
            if time.monotonic() > deadline:
                raise shared_etl.PipelineError(
                    f"airflow: another backfill of {DAG_ID} is still open after {TIMEOUT:.0f} s"
                ) from None
            if not waiting:
                _say_waiting()
                waiting = True
            time.sleep(2)


def _follow(api: AirflowApi, run_ids: list[str], backfill_id: int | None = None) -> dict[str, str]:
    """Poll the runs and their task instances until all have ended (and the backfill is
    closed), printing each change of state and each retry; mark them failed if stopped."""
    deadline = time.monotonic() + TIMEOUT
    seen: dict[str, tuple] = {}
    states: dict[str, str] = {}
    retries: list[tuple[str, str, int]] = []
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        while True:
            for run_id in run_ids:
                states[run_id] = _report_run(api, run_id, seen, retries)
            _say_retries(api, retries)
            closed = backfill_id is None or api.request(
                "GET", f"/api/v2/backfills/{backfill_id}"
            ).get("completed_at")  # fmt: skip
            if closed and all(state in FINISHED for state in states.values()):
                _say_retries(api, retries, last=True)
                return states
            if time.monotonic() > deadline:
                raise shared_etl.PipelineError(
                    f"airflow runs {', '.join(run_ids)} did not end within {TIMEOUT:.0f} s "
                    "(AIRFLOW_DEPLOYED_TIMEOUT); marked failed"
                )
            time.sleep(POLL_SECONDS)
    except BaseException:
        _fail(api, run_ids, backfill_id)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _report_run(api: AirflowApi, run_id: str, seen: dict[str, tuple],
                retries: list[tuple[str, str, int]]) -> str:  # fmt: skip
    try:
        run = api.request("GET", f"/api/v2/dags/{api.dag_id}/dagRuns/{run_id}")
    except ApiError as error:
        if error.status == 404:  # a backfill's run not created yet
            return "missing"
        raise
    instances = api.request("GET", f"/api/v2/dags/{api.dag_id}/dagRuns/{run_id}/taskInstances")
    for instance in instances.get("task_instances", []):
        key = f"{run_id} {instance['task_id']}"
        now = (instance["state"], instance["try_number"])
        if instance["state"] and seen.get(key) != now:
            seen[key] = now
            if instance["state"] == "up_for_retry":
                retries.append((run_id, instance["task_id"], instance["try_number"]))
                _say_retries(api, retries)
                continue
            where = f" on {instance['hostname']}" if instance.get("hostname") else ""
            _say(f"{key}: {instance['state']}, try {instance['try_number']}{where}")
    if seen.get(run_id) != (run["state"],):
        seen[run_id] = (run["state"],)
        _say(f"{run_id}: {run['state']}")
    return run["state"]


def _say_retries(api: AirflowApi, retries: list[tuple[str, str, int]], last: bool = False) -> None:
    """The retry line the DAG's on_retry_callback wrote in the failed try's log, the one local
    mode prints (the step, the attempt, the reason, the delay), for each retry in `retries`
    whose line is there yet; they are removed from the list once printed. The callback runs
    just after the task instance is up for retry, so a line may come a poll later; on the
    `last` call, what never came is said without its reason."""
    for retry in list(retries):
        run_id, task, attempt = retry
        path = f"/api/v2/dags/{api.dag_id}/dagRuns/{run_id}/taskInstances/{task}/logs/{attempt}"
        entries = api.request("GET", path).get("content", [])
        ours = console.CONSOLE_LOGGER
        lines = [entry["event"] for entry in entries
                 if isinstance(entry, dict) and entry.get("logger") == ours]  # fmt: skip
        if lines or last:
            retries.remove(retry)
            _say(f"{run_id}: {lines[0]}" if lines else
                 f"{run_id} {task}: up_for_retry, try {attempt} (its reason is in the task's log)")


def _fail(api: AirflowApi, run_ids: list[str], backfill_id: int | None) -> None:
    """Stop what this command started: cancel its backfill, mark unfinished runs failed."""
    try:
        if backfill_id is not None:
            api.request("PUT", f"/api/v2/backfills/{backfill_id}/cancel")
        for run_id in run_ids:
            run = api.request("GET", f"/api/v2/dags/{api.dag_id}/dagRuns/{run_id}")
            if run["state"] not in FINISHED:
                api.request("PATCH", f"/api/v2/dags/{api.dag_id}/dagRuns/{run_id}",
                            {"state": "failed"})  # fmt: skip
    except shared_etl.PipelineError:
        pass  # best effort: the original error is the one to report


def _task_error(api: AirflowApi, run_ids: list[str], fallback: str, prefix: str = "",
                tasks: Sequence[str] = TASKS):  # fmt: skip
    """The one-line error a failed task left in XCom (the earliest run's), else `fallback`."""
    for run_id in run_ids:
        for task in tasks:
            path = (f"/api/v2/dags/{api.dag_id}/dagRuns/{run_id}/taskInstances/{task}"
                    f"/xcomEntries/{ERROR_KEY}?deserialize=true")  # fmt: skip
            try:
                value = api.request("GET", path).get("value")
            except ApiError:
                continue
            if isinstance(value, str):
                value = json.loads(value)
            if isinstance(value, dict) and "message" in value:
                error = shared_etl.PipelineError(prefix + value["message"])
                error.exit_code = int(value.get("exit_code", 1))
                return error
    return shared_etl.PipelineError(fallback)


def _say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} | {line}", flush=True)


if __name__ == "__main__":
    sys.exit(run_command("python airflow/run_deployed.py", __doc__, run_one, run_backfill))
