"""The events pipeline as deployment runs on the deployed stack's Prefect (MODE=deployed).

    python prefect/run_deployed.py --input-path IN --output-path OUT [--date YYYY-MM-DD]
    python prefect/run_deployed.py --input-path IN --start D1 --end D2 --output-dir DIR

The same flags, outputs, exit statuses and one-line errors as prefect/flow.py, but nothing
runs here: this submits a run of the deployment `events-daily-metrics/deployed` (or
`events-backfill/deployed`, prefect/prefect.yaml) with its parameters to the stack's
`prefect server`, where one of the two workers of the `events` pool takes it and runs the
flow in a new process. It then follows the run through Prefect's API until it ends,
printing each state change of the flow run and of its task runs (retries included), and
cancels the run if it does not end in time (PREFECT_DEPLOYED_TIMEOUT seconds, default 900).

Paths are made absolute here, against the caller's working directory as in local mode, so
they mean the same whatever the worker's. ETL_FAIL_ATTEMPTS, when set, travels with the run
as a job variable (`env`), Prefect's way of giving one run's process its environment.
"""

import datetime as dt
import os
import re
import sys
import time
from uuid import UUID

# Prefect reads its settings when it is imported: prefect_env.py sets them (for this command:
# the stack's server, with its auth string), so it comes first.
from prefect_env import STACK  # isort: split

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
    LogFilterName,
)
from prefect.deployments import run_deployment
from prefect.states import Cancelling

import shared_etl.errors
from shared_etl.cli import run_command
from shared_etl.errors import PipelineError

ONE_RUN = "events-daily-metrics/deployed"
BACKFILL = "events-backfill/deployed"
PASSED_VARIABLES = ("ETL_FAIL_ATTEMPTS",)
TIMEOUT = float(os.environ.get("PREFECT_DEPLOYED_TIMEOUT", "900"))
POLL_SECONDS = 0.5
RETRY_LOG = re.compile(r"Task run failed with .* - Retry \d+/\d+ will start")
TASK_LOGGER, FLOW_LOGGER = "prefect.task_runs", "prefect.flow_runs"
LOG_BATCH_SECONDS = 2.0  # PREFECT_LOGGING_TO_API_BATCH_INTERVAL's default, in the workers


def run_one(input_path: str, output_path: str, date: str | None) -> None:
    parameters = {
        "input_path": os.path.abspath(input_path),
        "output_path": os.path.abspath(output_path),
        "date": date,
    }
    _submit_and_follow(ONE_RUN, parameters)


def run_backfill(input_path: str, start: str, end: str, output_dir: str) -> None:
    parameters = {
        "input_path": os.path.abspath(input_path),
        "start": start,
        "end": end,
        "output_dir": os.path.abspath(output_dir),
    }
    _submit_and_follow(BACKFILL, parameters)


def _submit_and_follow(deployment: str, parameters: dict,
                       passed: tuple[str, ...] = PASSED_VARIABLES) -> None:  # fmt: skip
    """A deployment run with `parameters`, followed until it ends; a failure is raised as the
    pipeline error the flow raised in the worker, so the exit status is local mode's. The
    variables `passed` that are set here travel with the run (fault injection)."""
    env = {name: os.environ[name] for name in passed if os.environ.get(name)}
    job_variables = {"env": env} if env else None
    flow_run = run_deployment(
        deployment, parameters=parameters, job_variables=job_variables, timeout=0,
        as_subflow=False, tags=["make"],
    )  # fmt: skip
    url = f"http://127.0.0.1:{STACK['PREFECT_PORT']}/v2/runs/flow-run/{flow_run.id}"
    _say(f"submitted {deployment} as flow run {flow_run.id} ({url})")
    with get_client(sync_client=True) as client:
        try:
            state = _follow(client, flow_run.id, deployment)
        except BaseException:
            client.set_flow_run_state(flow_run.id, Cancelling(), force=True)
            raise
    if state.is_completed():
        return
    raise _pipeline_error(state, flow_run.id)


def _follow(client: SyncPrefectClient, flow_run_id: UUID, deployment: str):
    """Poll the flow run and its task runs until the run ends, printing each state change and
    each retry in the order Prefect recorded them; the final state."""
    deadline = time.monotonic() + TIMEOUT
    timeline, ended_at = _Timeline(), 0.0
    only_this_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    while True:
        flow_run = client.read_flow_run(flow_run_id)
        task_runs = client.read_task_runs(flow_run_filter=only_this_run)
        for task_run in task_runs:
            timeline.state(task_run, f"task {task_run.name}")
        timeline.state(flow_run, f"flow run {deployment}")
        names = {run.id: run.name for run in task_runs}
        logged_to_the_end = _read_retries(client, flow_run_id, names, timeline)
        ended = flow_run.state is not None and flow_run.state.is_final()
        if ended and (logged_to_the_end or time.monotonic() > ended_at + LOG_BATCH_SECONDS + 1):
            timeline.show(everything=True)
            return flow_run.state
        ended_at = ended_at if ended else time.monotonic()
        timeline.show(everything=False)
        if time.monotonic() > deadline:
            raise PipelineError(
                f"flow run {flow_run_id} did not end within {TIMEOUT:.0f} s"
                " (PREFECT_DEPLOYED_TIMEOUT); it has been cancelled"
            )
        time.sleep(POLL_SECONDS)


def _read_retries(client: SyncPrefectClient, flow_run_id: UUID, names: dict[UUID, str],
                  timeline: "_Timeline") -> bool:  # fmt: skip
    """Add the retries logged so far to `timeline`; whether the flow run's last line ("Finished
    in state …") is in, after which no line of the run is still on its way."""
    of_this_run = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]),
                            name=LogFilterName(any_=[TASK_LOGGER, FLOW_LOGGER]))  # fmt: skip
    logs = client.read_logs(of_this_run)
    for log in logs:
        if log.name == TASK_LOGGER and RETRY_LOG.match(log.message):
            name = names.get(log.task_run_id) or client.read_task_run(log.task_run_id).name
            timeline.add(log.id, log.timestamp, f"task {name}: {log.message}")
    return any(log.name == FLOW_LOGGER and log.message.startswith("Finished in state")
               for log in logs)  # fmt: skip


class _Timeline:
    """The run's state changes and retries, printed once each in the order of Prefect's own
    timestamps. A retry's line is Prefect's own, as local mode prints it ("Task run failed
    with exception: … - Retry 1/2 will start 1 second(s) from now"), from the log the
    flow-run process sends to the API in batches: a line is held until it is older than a
    batch, so a retry never shows after the attempt that followed it."""

    HOLD = dt.timedelta(seconds=LOG_BATCH_SECONDS + 1)

    def __init__(self) -> None:
        self.seen: set = set()
        self.waiting: list[tuple[dt.datetime, str]] = []

    def add(self, key, when: dt.datetime, line: str) -> None:
        if key not in self.seen:
            self.seen.add(key)
            self.waiting.append((when, line))

    def state(self, run, what: str) -> None:
        state = run.state
        if state is None or state.name in ("AwaitingRetry", "Retrying"):
            return  # the retry's log line says it, with the reason and the delay
        attempt = f" (attempt {run.run_count})" if run.run_count > 1 else ""
        failed = state.is_failed() or state.is_crashed()
        message = f": {state.message}" if failed else ""
        self.add((run.id, state.name, run.run_count), state.timestamp,
                 f"{what}: {state.name}{attempt}{message}")  # fmt: skip

    def show(self, everything: bool) -> None:
        settled = dt.datetime.now(dt.UTC) - self.HOLD
        self.waiting.sort(key=lambda item: item[0])
        while self.waiting and (everything or self.waiting[0][0] < settled):
            when, line = self.waiting.pop(0)
            print(f"{when.astimezone().strftime('%H:%M:%S')} | {line}", flush=True)


def _say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} | {line}", flush=True)


def _pipeline_error(state, flow_run_id: UUID) -> PipelineError:
    """The flow's own error, rebuilt from the state message Prefect records for a failed run
    ("Flow run encountered an exception: InputFileError: …"): same text, same exit code.
    Otherwise the final state and Prefect's reason, e.g. "crashed: Process exited with status
    code: -9…" when the worker saw the run's process die."""
    message = state.message or state.name
    detail = message.removeprefix("Flow run encountered an exception: ")
    name, _, text = detail.partition(": ")
    error_type = getattr(shared_etl.errors, name, None)
    if isinstance(error_type, type) and issubclass(error_type, PipelineError) and text:
        error = PipelineError(text)
        error.exit_code = error_type.exit_code
        return error
    reason = f": {state.message}" if state.message else ""
    return PipelineError(f"flow run {flow_run_id} {state.name.lower()}{reason}")


if __name__ == "__main__":
    sys.exit(run_command("python prefect/run_deployed.py", __doc__, run_one, run_backfill))
