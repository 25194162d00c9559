"""The deployed stack's Airflow as its REST API v2 shows it, for airflow/run_pipeline_deployed.py:
a client with the stack's login, the DAG made ready for runs, the runs followed until they
end, and the one-line error a failed task left behind.

Nothing here runs a task: the stack's scheduler hands task instances through Redis to its
Celery workers. What a command learns of them is what the API says: each change of state (and
the worker that took it), each retry with the line the DAG's retry callback logged, and at the
end the error each failed task left in XCom (pipeline_dag.ERROR_KEY). Following is bounded by
AIRFLOW_DEPLOYED_TIMEOUT seconds (default 900); runs that do not end in time, or whose
command is stopped (Ctrl-C, SIGTERM), are marked failed in Airflow, as a user expects of a
run nobody waits for any more.
"""

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from pipeline_dag import ERROR_KEY

from parity import console
from parity.errors import PipelineError, from_wire
from stack import settings

TIMEOUT = float(os.environ.get("AIRFLOW_DEPLOYED_TIMEOUT", "900"))
POLL_SECONDS = 1.0
PARSE_SECONDS = 180  # how long a DAG may take to appear after it is registered
FINISHED = {"success", "failed"}
# Loopback only: a proxy from the caller's environment must never see these requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ApiError(PipelineError):
    """An HTTP error status from the API; `status` tells a missing DAG (404) from the rest."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AirflowApi:
    """The stack's Airflow REST API v2, with a token the simple auth manager gives for the
    stack's user and password (stack.env, made at `make up`), for the DAG `dag_id`."""

    def __init__(self, dag_id: str) -> None:
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
            raise PipelineError(
                f"airflow api-server {self.base} did not answer {method} {path}: {error}"
            ) from None

    def run_path(self, run_id: str) -> str:
        return f"/api/v2/dags/{self.dag_id}/dagRuns/{run_id}"


def _detail(body: bytes) -> str:
    try:
        detail = json.loads(body).get("detail", body.decode())
    except (ValueError, AttributeError):
        detail = body.decode(errors="replace")
    return " ".join(str(detail).split())


def ready_api(dag_id: str) -> AirflowApi:
    """The API, once the DAG processor has parsed the DAG; the DAG unpaused (it is created
    paused; the stack's scheduler makes no runs of its own: use_job_schedule is off)."""
    api = AirflowApi(dag_id)
    deadline = time.monotonic() + PARSE_SECONDS
    while True:
        try:
            dag = api.request("GET", f"/api/v2/dags/{dag_id}")
            break
        except ApiError as error:
            if error.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(POLL_SECONDS)
    if dag.get("is_paused"):
        api.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    return api


def follow(api: AirflowApi, run_ids: list[str]) -> dict[str, str]:
    """Poll the runs and their task instances until all have ended, printing each change of
    state and each retry; the state of each run. Stopped or out of time: marked failed."""
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
            if all(state in FINISHED for state in states.values()):
                _say_retries(api, retries, last=True)
                return states
            if time.monotonic() > deadline:
                raise PipelineError(
                    f"airflow runs {', '.join(run_ids)} of {api.dag_id} did not end within "
                    f"{TIMEOUT:.0f} s (AIRFLOW_DEPLOYED_TIMEOUT); marked failed"
                )
            time.sleep(POLL_SECONDS)
    except BaseException:
        _fail(api, run_ids)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _report_run(api: AirflowApi, run_id: str, seen: dict[str, tuple],
                retries: list[tuple[str, str, int]]) -> str:  # fmt: skip
    run = api.request("GET", api.run_path(run_id))
    instances = api.request("GET", f"{api.run_path(run_id)}/taskInstances")
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
            console.progress(f"{key}: {instance['state']}, try {instance['try_number']}{where}")
    if seen.get(run_id) != (run["state"],):
        seen[run_id] = (run["state"],)
        console.progress(f"{run_id}: {run['state']}")
    return run["state"]


def _say_retries(api: AirflowApi, retries: list[tuple[str, str, int]], last: bool = False) -> None:
    """The retry line the DAG's on_retry_callback wrote in the failed try's log, the one local
    mode prints (the step, the attempt, the reason, the delay), for each retry in `retries`
    whose line is there yet; they are removed from the list once printed. The callback runs
    just after the task instance is up for retry, so a line may come a poll later; on the
    `last` call, what never came is said without its reason."""
    for retry in list(retries):
        run_id, task, attempt = retry
        path = f"{api.run_path(run_id)}/taskInstances/{task}/logs/{attempt}"
        entries = api.request("GET", path).get("content", [])
        lines = [entry["event"] for entry in entries if isinstance(entry, dict)
                 and entry.get("logger") == console.CONSOLE_LOGGER]  # fmt: skip
        if lines or last:
            retries.remove(retry)
            console.progress(f"{run_id}: {lines[0]}" if lines else
                f"{run_id} {task}: up_for_retry, try {attempt} (its reason is in the task's log)")


def _fail(api: AirflowApi, run_ids: list[str]) -> None:
    """Mark the runs this command started and no longer follows failed, if unfinished."""
    try:
        for run_id in run_ids:
            if api.request("GET", api.run_path(run_id))["state"] not in FINISHED:
                api.request("PATCH", api.run_path(run_id), {"state": "failed"})
    except PipelineError:
        pass  # best effort: the original error is the one to report


def task_error(api: AirflowApi, run_ids: list[str], tasks: Sequence[str],
               fallback: str) -> PipelineError:  # fmt: skip
    """The one-line error a failed task left in XCom (the first run's, in task order), with
    its exit status; else `fallback`."""
    for run_id in run_ids:
        for task in tasks:
            path = (f"{api.run_path(run_id)}/taskInstances/{task}/xcomEntries/{ERROR_KEY}"
                    "?deserialize=true")  # fmt: skip
            try:
                value = api.request("GET", path).get("value")
            except ApiError:
                continue
            if (error := from_wire(json.loads(value) if isinstance(value, str) else value)):
                return error
    return PipelineError(fallback)
