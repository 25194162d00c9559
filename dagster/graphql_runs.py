"""Runs on the deployed stack's Dagster, through its webserver's GraphQL API: launched, followed
to their end, terminated if this command stops first, and their error read back.

A launched run (`launchRun`) waits in Dagster's queue (the queued run coordinator) until the
daemon hands it to the run launcher, which has the code server start it in a process of its
own. Following it prints each change of state of the run and of each step, and one line per
retry, the line local mode prints (parity.console.retry_line). A run that has not ended in
DAGSTER_DEPLOYED_TIMEOUT seconds (default 900), or whose command is interrupted, is
terminated. A failed run's error is the step's one line and exit status, as the adapter's op
recorded them (run_failures.py), else how its process ended.
"""

import base64
import functools
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from run_failures import EXIT_CODE

from parity import console
from parity.errors import PipelineError, from_wire

# stack/settings.py, from the checkout (after what is installed)
sys.path.append(str(Path(__file__).resolve().parent.parent))
from stack import settings  # isort: skip

TIMEOUT = float(os.environ.get("DAGSTER_DEPLOYED_TIMEOUT", "900"))
POLL_SECONDS = 0.5
FINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
# Loopback only: a proxy from the caller's environment must never see the API.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
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
EVENTS = """
query Events($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message }
        ... on StepEvent { stepKey }
        ... on ErrorEvent { error { className message causes { className message } } }
        ... on ExecutionStepUpForRetryEvent { secondsToWait }
        ... on ExecutionStepFailureEvent {
          failureMetadata {
            description
            metadataEntries { label ... on IntMetadataEntry { intValue } }
          }
        }
      }
    }
  }
}"""
TERMINATE = """
mutation Terminate($runId: String!) { terminateRun(runId: $runId) { __typename } }"""


@functools.cache
def _stack_settings() -> dict[str, str]:
    return settings.running()


def _basic_auth() -> str:
    """The login the proxy in front of the webserver asks for (stack.env, made at `make up`)."""
    stack = _stack_settings()
    login = f"{stack['STACK_DAGSTER_USER']}:{stack['STACK_DAGSTER_PASSWORD']}"
    return "Basic " + base64.b64encode(login.encode()).decode()


def ui(path: str) -> str:
    """The address of a page of the webserver (its login proxy's)."""
    return f"http://127.0.0.1:{_stack_settings()['DAGSTER_PORT']}{path}"


def graphql(query: str, variables: dict) -> dict:
    """One request to the webserver's GraphQL API, through its login proxy; its `data`, or a
    one-line error."""
    url = ui("/graphql")
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


def launch(params: dict, label: str) -> str:
    """Launch a run of `params` (GraphQL ExecutionParams); its id, said with its page."""
    result = graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        detail = result.get("message") or "; ".join(e["message"] for e in result.get("errors", []))
        raise PipelineError(f"dagster launchRun refused: {result['__typename']}: {detail}")
    run_id = result["run"]["runId"]
    console.progress(f"launched {label} as run {run_id} ({ui(f'/runs/{run_id}')})")
    return run_id


def follow(run_ids: Sequence[str]) -> None:
    """Follow the runs to their end, terminated if this command is stopped or they take too
    long; the first failed run's error."""
    try:
        runs = _poll(lambda: [_run(run_id) for run_id in run_ids],
                     lambda runs: all(run["status"] in FINAL_RUN for run in runs))  # fmt: skip
    except BaseException:
        for run_id in run_ids:
            with suppress(PipelineError):
                graphql(TERMINATE, {"runId": run_id})
        raise
    for run in runs:
        if run["status"] != "SUCCESS":
            raise run_error(run["runId"])


def _run(run_id: str) -> dict:
    found = graphql(RUN, {"runId": run_id})["runOrError"]
    if found["__typename"] != "Run":
        raise PipelineError(f"dagster run {run_id}: {found.get('message', found['__typename'])}")
    return found


def _poll(poll: Callable[[], list[dict]], done: Callable[[list[dict]], bool]) -> list[dict]:
    """Poll until `done(runs)`, printing each new state of every run and step."""
    deadline = time.monotonic() + TIMEOUT
    seen: dict = {}
    while True:
        runs = poll()
        for run in runs:
            _report(seen, run)
        if done(runs):
            return runs
        if time.monotonic() > deadline:
            raise PipelineError(f"dagster did not finish within {TIMEOUT:.0f} s "
                                "(DAGSTER_DEPLOYED_TIMEOUT); its run has been terminated")
        time.sleep(POLL_SECONDS)


def _report(seen: dict, run: dict) -> None:
    """One line per new state of a run, per new state or attempt of each of its steps, and per
    retry: local mode's line (the step, the attempt, the reason, the delay), from the retry
    event in the run's event log, which is there before the step's stats show the retry."""
    if seen.get(run["runId"]) != run["status"]:
        seen[run["runId"]] = run["status"]
        console.progress(f"run {run['runId'][:8]}: {run['status']}")
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
            status = step["status"] or "STARTED"
            console.progress(f"run {run['runId'][:8]} step {step['stepKey']}: {status}{again}")


def _events(run_id: str) -> list[dict]:
    return graphql(EVENTS, {"runId": run_id})["logsForRun"].get("events", [])


def _say_retries(seen: dict, run_id: str, step: str, known: int) -> None:
    retries = [event for event in _events(run_id)
               if event["__typename"] == "ExecutionStepUpForRetryEvent"
               and event["stepKey"] == step]  # fmt: skip
    for attempt, event in enumerate(retries[:known], start=1):
        if (run_id, step, attempt) not in seen:
            seen[(run_id, step, attempt)] = True
            last = [event["error"], *event["error"]["causes"]][-1]
            message = (last["message"] or "").strip().splitlines() or [""]
            reason = f"{last['className']}: {message[0].split(': ', 1)[-1]}"
            console.progress(f"run {run_id[:8]} " + console.retry_line(
                step, attempt, reason, event["secondsToWait"] or 0))  # fmt: skip


def run_error(run_id: str) -> PipelineError:
    """The error behind a failed run, from its event log: the failed step's one line and exit
    status (its Failure's description and `exit_code`), else where it failed and the error's
    last line, else how its process ended (a kill, the OOM killer)."""
    events = _events(run_id)
    for event in events:
        failure = event.get("failureMetadata") or {}
        if failure.get("description"):
            codes = [entry.get("intValue") for entry in failure.get("metadataEntries", [])
                     if entry["label"] == EXIT_CODE]  # fmt: skip
            return from_wire({"message": failure["description"],
                              "exit_code": codes[0] if codes else 1})  # fmt: skip
    errors = [event for event in events
              if event.get("error") and event["__typename"] != "ExecutionStepUpForRetryEvent"]
    errors.sort(key=lambda event: event["__typename"] != "ExecutionStepFailureEvent")
    if errors:
        where = errors[0].get("stepKey") or errors[0]["__typename"]
        cause = errors[0]["error"]["message"].strip().splitlines()[-1]
        return PipelineError(f"dagster run {run_id} failed at {where}: {cause}")
    # No error recorded: the run's process died; Dagster's engine event says how ("Run
    # execution process for … was terminated by signal 9 (SIGKILL)").
    engine = [event["message"] for event in events
              if event["__typename"] == "EngineEvent" and "process" in event.get("message", "")]
    if engine:
        detail = engine[-1].removeprefix("[DagsterApiServer] ").split(". ")[0]
        return PipelineError(f"dagster run {run_id} failed: {detail}")
    return PipelineError(f"dagster run {run_id} failed: see {ui(f'/runs/{run_id}')}")
