"""The events pipeline as launched runs on the deployed stack's Dagster (MODE=deployed).

    python dagster/run_deployed.py --input-path IN --output-path OUT [--date YYYY-MM-DD]
    python dagster/run_deployed.py --input-path IN --start D1 --end D2 --output-dir DIR

The same flags, outputs, exit statuses and one-line errors as dagster/definitions.py, but
nothing runs here. One run is a launched run of the job `events_metrics` with its run
config, through the webserver's GraphQL API (`launchRun`): Dagster queues it (the queued
run coordinator), the daemon dequeues it and the run launcher has the code server start it
in a process of its own. A backfill is Dagster's own partition backfill of the asset
`daily_metrics` over the dates (`launchPartitionBackfill`), which the daemon turns into one
run for the whole range (its single-run backfill policy). Either is then followed through
the API until it ends, printing each change of state and each step's attempts, and is
terminated (cancelled) if it does not end in time (DAGSTER_DEPLOYED_TIMEOUT seconds,
default 900) or this command is interrupted.

Paths are made absolute here, against the caller's working directory as in local mode, so
they mean the same in the run's process. ETL_FAIL_ATTEMPTS, when set, travels with the run
as the tag `etl/ETL_FAIL_ATTEMPTS`, which the run sets in its own process (definitions.py).
"""

import base64
import functools
import json
import os
import sys
import time
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path

import shared_etl
import shared_etl.errors
from parity import console
from shared_etl.cli import run_command
from shared_etl.errors import PipelineError

# stack/settings.py, from the checkout (after what is installed)
sys.path.append(str(Path(__file__).resolve().parent.parent))
from stack import settings

LOCATION = "events"  # dagster/deployed/workspace.yaml
REPOSITORY = "__repository__"  # the repository Dagster makes of a module's `defs`
ONE_RUN_JOB = "events_metrics"
BACKFILL_ASSET = "daily_metrics"
PASSED_VARIABLES = ("ETL_FAIL_ATTEMPTS",)  # run_resources.RUN_VARIABLES
TIMEOUT = float(os.environ.get("DAGSTER_DEPLOYED_TIMEOUT", "900"))
POLL_SECONDS = 0.5
# Loopback only: a proxy from the caller's environment must never see the API.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

FINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
FINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status stepStats { stepKey status attempts { startTime } } }
    ... on Error { message }
  }
}"""
BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      error { message }
      runs { runId status stepStats { stepKey status attempts { startTime } } }
    }
    ... on Error { message }
  }
}"""
FAILURES = """
query Failures($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message }
        ... on StepEvent { stepKey }
        ... on ErrorEvent { error { className message causes { className message } } }
        ... on ExecutionStepUpForRetryEvent { secondsToWait }
      }
    }
  }
}"""
TERMINATE = """
mutation Terminate($runId: String!) { terminateRun(runId: $runId) { __typename } }"""
CANCEL_BACKFILL = """
mutation Cancel($id: String!) { cancelPartitionBackfill(backfillId: $id) { __typename } }"""


@functools.cache
def _stack_settings() -> dict[str, str]:
    return settings.running()


def _basic_auth() -> str:
    """The login the proxy in front of the webserver asks for (stack.env, made at `make up`)."""
    stack = _stack_settings()
    login = f"{stack['STACK_DAGSTER_USER']}:{stack['STACK_DAGSTER_PASSWORD']}"
    return "Basic " + base64.b64encode(login.encode()).decode()


def graphql(query: str, variables: dict) -> dict:
    """One request to the webserver's GraphQL API, through its login proxy; its `data`, or a
    one-line error."""
    url = f"http://127.0.0.1:{_stack_settings()['DAGSTER_PORT']}/graphql"
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    request.add_header("Authorization", _basic_auth())
    try:
        with _OPENER.open(request, timeout=60) as response:
            answer = json.load(response)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise PipelineError(f"the Dagster webserver at {url} did not answer: {exc}") from None
    if answer.get("errors"):
        raise PipelineError(f"the Dagster webserver at {url}: {answer['errors'][0]['message']}")
    return answer["data"]


def run_config(ops: dict) -> dict:
    """As in local mode (console_log.run_config): the assets' parameters, the log on stdout."""
    return {"ops": ops, "loggers": {"console": {"config": {"log_level": "INFO"}}}}


def run_tags() -> list[dict[str, str]]:
    return [{"key": f"etl/{name}", "value": os.environ[name]}
            for name in PASSED_VARIABLES if os.environ.get(name)]  # fmt: skip


def run_one(input_path: str, output_path: str, date: str | None) -> None:
    shared_etl.check_output_path(output_path)
    shared_etl.parse_date(date)
    config = {"input_path": os.path.abspath(input_path),
              "output_path": os.path.abspath(output_path), "date": date}  # fmt: skip
    params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY,
                     "jobName": ONE_RUN_JOB},
        "runConfigData": run_config({"metrics": {"config": config}}),
        "executionMetadata": {"tags": run_tags()},
    }  # fmt: skip
    launched = _launched(graphql(LAUNCH_RUN, {"params": params})["launchRun"], "launchRun")
    run_id = launched["run"]["runId"]
    _say(f"launched {ONE_RUN_JOB} as run {run_id} ({_ui(f'/runs/{run_id}')})")
    try:
        run = _follow(lambda: [_run(run_id)], lambda runs: runs[0]["status"] in FINAL_RUN)
    except BaseException:
        with suppress(PipelineError):
            graphql(TERMINATE, {"runId": run_id})
        raise
    if run[0]["status"] != "SUCCESS":
        raise run_error(run_id)


def run_backfill(input_path: str, start: str, end: str, output_dir: str) -> None:
    dates = shared_etl.dates_between(start, end)
    shared_etl.check_output_dir(output_dir)
    config = {"input_path": os.path.abspath(input_path), "output_dir": os.path.abspath(output_dir)}
    params = {
        "assetSelection": [{"path": [BACKFILL_ASSET]}],
        "partitionNames": dates,
        "runConfigData": run_config({BACKFILL_ASSET: {"config": config}}),
        "tags": run_tags(),
        "title": f"{BACKFILL_ASSET} {start}..{end}",
    }
    launched = graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    backfill_id = _launched(launched, "launchPartitionBackfill")["backfillId"]
    _say(f"launched backfill {backfill_id} of {BACKFILL_ASSET}, {start}..{end} "
         f"({_ui(f'/runs/b/{backfill_id}')})")  # fmt: skip
    state: dict = {}
    try:
        runs = _follow(lambda: _backfill(backfill_id, state), lambda _: state["done"])
    except BaseException:
        with suppress(PipelineError):
            graphql(CANCEL_BACKFILL, {"id": backfill_id})
        raise
    if state["status"] in ("COMPLETED", "COMPLETED_SUCCESS") and all(
        run["status"] == "SUCCESS" for run in runs
    ):
        return
    failed = [run["runId"] for run in runs if run["status"] != "SUCCESS"]
    if failed:
        raise run_error(failed[0])
    raise PipelineError(f"dagster backfill {backfill_id} ended {state['status']}: {state['error']}")


def _launched(result: dict, what: str) -> dict:
    if result["__typename"] in ("LaunchRunSuccess", "LaunchBackfillSuccess"):
        return result
    detail = result.get("message") or "; ".join(e["message"] for e in result.get("errors", []))
    raise PipelineError(f"dagster {what} refused: {result['__typename']}: {detail}")


def _run(run_id: str) -> dict:
    found = graphql(RUN, {"runId": run_id})["runOrError"]
    if found["__typename"] != "Run":
        raise PipelineError(f"dagster run {run_id}: {found.get('message', found['__typename'])}")
    return found


def _backfill(backfill_id: str, state: dict) -> list[dict]:
    found = graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
    if found["__typename"] != "PartitionBackfill":
        raise PipelineError(f"dagster backfill {backfill_id}: {found.get('message')}")
    if state.get("status") != found["status"]:
        _say(f"backfill {backfill_id}: {found['status']}")
    state["status"], state["error"] = found["status"], (found["error"] or {}).get("message")
    # Done when the daemon has closed it and every run it made has ended.
    state["done"] = found["status"] in FINAL_BACKFILL and all(
        run["status"] in FINAL_RUN for run in found["runs"]
    )
    return found["runs"]


def _follow(poll, done) -> list[dict]:
    """Poll until `done(runs)`, printing each new state of every run and step."""
    deadline = time.monotonic() + TIMEOUT
    seen: dict[str, tuple] = {}
    while True:
        runs = poll()
        for run in runs:
            _report(seen, run)
        if done(runs):
            return runs
        if time.monotonic() > deadline:
            raise PipelineError(
                f"dagster did not finish within {TIMEOUT:.0f} s (DAGSTER_DEPLOYED_TIMEOUT);"
                " its run has been terminated"
            )
        time.sleep(POLL_SECONDS)


def _report(seen: dict, run: dict) -> None:
    """One line per new state of a run, per new state or attempt of each of its steps, and per
    retry: local mode's line (the step, the attempt, the reason, the delay), from the retry
    event in the run's event log, which is there before the step's stats show the retry."""
    if seen.get(run["runId"]) != run["status"]:
        seen[run["runId"]] = run["status"]
        _say(f"run {run['runId'][:8]}: {run['status']}")
    for step in run["stepStats"]:
        attempts = len(step["attempts"])
        key = f"{run['runId']}/{step['stepKey']}"
        if seen.get(key) == (step["status"], attempts):
            continue
        seen[key] = (step["status"], attempts)
        if step["status"] == "UP_FOR_RETRY" or attempts > 1:
            # the retries of the attempts these stats know of, so that the lines keep order
            known = attempts if step["status"] == "UP_FOR_RETRY" else attempts - 1
            _say_retries(seen, run["runId"], step["stepKey"], known)
        if step["status"] != "UP_FOR_RETRY":
            again = f" (attempt {attempts})" if attempts > 1 else ""
            _say(f"run {run['runId'][:8]} step {step['stepKey']}: {step['status'] or 'STARTED'}"
                 f"{again}")  # fmt: skip


def _say_retries(seen: dict, run_id: str, step: str, known: int) -> None:
    events = graphql(FAILURES, {"runId": run_id})["logsForRun"].get("events", [])
    retries = [event for event in events if event["__typename"] == "ExecutionStepUpForRetryEvent"
               and event["stepKey"] == step]  # fmt: skip
    for attempt, event in enumerate(retries[:known], start=1):
        key = (run_id, step, attempt)
        if key not in seen:
            seen[key] = True
            last = [event["error"], *event["error"]["causes"]][-1]
            message = (last["message"] or "").strip().splitlines() or [""]
            reason = f"{last['className']}: {message[0].split(': ', 1)[-1]}"
            _say(f"run {run_id[:8]} " + console.retry_line(
                step, attempt, reason, event["secondsToWait"] or 0))  # fmt: skip


def _ui(path: str) -> str:
    return f"http://127.0.0.1:{_stack_settings()['DAGSTER_PORT']}{path}"


def _say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} | {line}", flush=True)


def run_error(run_id: str) -> PipelineError:
    """The error behind a failed run, from Dagster's event log through the API, as local mode
    gives it (definitions.pipeline_error): the shared_etl error raised in the run (message and
    exit code), else where it failed and the error's last line, else how its process ended."""
    logs = graphql(FAILURES, {"runId": run_id})["logsForRun"]
    events = [
        event
        for event in logs.get("events", [])
        if event.get("error") and event["__typename"] != "ExecutionStepUpForRetryEvent"
    ]
    events.sort(key=lambda event: event["__typename"] != "ExecutionStepFailureEvent")
    for event in events:
        for error in [event["error"], *event["error"]["causes"]]:
            kind = getattr(shared_etl.errors, error["className"] or "", None)
            if isinstance(kind, type) and issubclass(kind, PipelineError):
                found = PipelineError(error["message"].split(": ", 1)[-1].strip())
                found.exit_code = kind.exit_code
                return found
    if events:
        where = events[0].get("stepKey") or events[0]["__typename"]
        cause = events[0]["error"]["message"].strip().splitlines()[-1]
        return PipelineError(f"dagster run {run_id} failed at {where}: {cause}")
    # No error recorded: the run's process died (a kill, the OOM killer); Dagster's engine
    # event says how ("Run execution process for … was terminated by signal 9 (SIGKILL)").
    engine = [
        event["message"]
        for event in logs.get("events", [])
        if event["__typename"] == "EngineEvent" and "process" in event.get("message", "")
    ]
    if engine:
        detail = engine[-1].removeprefix("[DagsterApiServer] ").split(". ")[0]
        return PipelineError(f"dagster run {run_id} failed: {detail}")
    return PipelineError(f"dagster run {run_id} failed: see {_ui(f'/runs/{run_id}')}")


if __name__ == "__main__":
    sys.exit(run_command("python dagster/run_deployed.py", __doc__, run_one, run_backfill))
