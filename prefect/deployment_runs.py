"""Runs of a deployment on the deployed stack's Prefect, submitted and followed from here.

A run of a deployment is submitted with its parameters to the stack's `prefect server`, where
one of the workers of the `events` pool takes it and runs the flow in a new process. This
follows it through Prefect's API until it ends, printing each state change of the flow run and
of its task runs, and each retry with Prefect's own line (the one local mode prints), and
cancels the run if it does not end in time (PREFECT_DEPLOYED_TIMEOUT seconds, default 900) or
if this command is interrupted. A failed run ends this command with the pipeline error the
flow raised in the worker: its text and its exit code, as in local mode.

Imported after prefect_env, which points Prefect at the stack's server.
"""

import datetime as dt
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
    LogFilterName,
)
from prefect.client.schemas.objects import State
from prefect.deployments import run_deployment
from prefect.states import Cancelling

from parity import console
from parity.errors import PipelineError

TIMEOUT = float(os.environ.get("PREFECT_DEPLOYED_TIMEOUT", "900"))
POLL_SECONDS = 0.5
RETRY_LOG = re.compile(r"Task run failed with .* - Retry \d+/\d+ will start")
TASK_LOGGER, FLOW_LOGGER = "prefect.task_runs", "prefect.flow_runs"
LOG_BATCH_SECONDS = 2.0  # PREFECT_LOGGING_TO_API_BATCH_INTERVAL's default, in the workers
FAILED_FLOW = "Flow run encountered an exception: "  # Prefect's prefix of a failed run's message


def submit_and_follow(deployment: str, parameters: Mapping, passed: Sequence[str], ui_port: str,
                      tags: Sequence[str] = ("make",)) -> None:  # fmt: skip
    """A run of `deployment` (flow/deployment) with `parameters`, followed until it ends; a
    failure is raised as the pipeline error the flow raised in the worker, so the exit status
    is local mode's. The variables `passed` that are set here travel with the run as a job
    variable (`env`, Prefect's way of giving one run's process its environment): the fault
    injection's. `ui_port` is the stack's Prefect port, for the run's address in the UI."""
    env = {name: os.environ[name] for name in passed if os.environ.get(name)}
    flow_run = run_deployment(
        deployment, parameters=dict(parameters), job_variables={"env": env} if env else None,
        timeout=0, as_subflow=False, tags=list(tags),
    )  # fmt: skip
    url = f"http://127.0.0.1:{ui_port}/v2/runs/flow-run/{flow_run.id}"
    console.progress(f"submitted {deployment} as flow run {flow_run.id} ({url})")
    with get_client(sync_client=True) as client:
        try:
            state = _follow(client, flow_run.id, deployment)
        except BaseException:  # the deadline, Ctrl-C, a lost connection: the run stops too
            client.set_flow_run_state(flow_run.id, Cancelling(), force=True)
            raise
    if not state.is_completed():
        raise pipeline_error(state, flow_run.id)


def _follow(client: SyncPrefectClient, flow_run_id: UUID, deployment: str) -> State:
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

    def add(self, key: object, when: dt.datetime, line: str) -> None:
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


def pipeline_error(state: State, flow_run_id: UUID) -> PipelineError:
    """The flow's own error, rebuilt from the state message Prefect records for a failed run
    ("Flow run encountered an exception: InputError: step 'orders': …"): same text, and the
    exit code of the error type of that name. Every such type is loaded here too, since this
    command loaded the pipeline to bind its parameters. Otherwise the final state and
    Prefect's reason, e.g. "crashed: Process exited with status code: -9…" when the worker
    saw the run's process die."""
    message = state.message or state.name
    name, _, text = message.removeprefix(FAILED_FLOW).partition(": ")
    codes = {kind.exit_code for kind in _pipeline_error_types() if kind.__name__ == name}
    if message.startswith(FAILED_FLOW) and text and codes:
        error = PipelineError(text)
        error.exit_code = codes.pop() if len(codes) == 1 else PipelineError.exit_code
        return error
    reason = f": {state.message}" if state.message else ""
    return PipelineError(f"flow run {flow_run_id} {state.name.lower()}{reason}")


def _pipeline_error_types(kind: type[PipelineError] = PipelineError) -> Iterator[type]:
    """PipelineError and every subclass loaded in this process (parity's, the pipeline's)."""
    yield kind
    for subclass in kind.__subclasses__():
        yield from _pipeline_error_types(subclass)
