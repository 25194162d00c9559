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

import os
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
STACK_ENV = PROJECT / ".state" / "stack" / "stack.env"


def _stack_settings() -> dict[str, str]:
    if not STACK_ENV.exists():
        print(f"error: the deployed stack is not running ({STACK_ENV} missing): make up",
              file=sys.stderr)  # fmt: skip
        sys.exit(1)
    lines = STACK_ENV.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


STACK = _stack_settings()
# Prefect reads its settings at import: talk to the stack's server with its auth string (made
# at `make up`), keep state in the project.
os.environ.update(
    {
        "PREFECT_API_URL": f"http://127.0.0.1:{STACK['PREFECT_PORT']}/api",
        "PREFECT_API_AUTH_STRING": STACK["STACK_PREFECT_API_AUTH"],
        "PREFECT_HOME": str(PROJECT / ".state" / "stack" / "prefect"),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "DO_NOT_TRACK": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
)

from uuid import UUID  # noqa: E402

from prefect.client.orchestration import SyncPrefectClient, get_client  # noqa: E402
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId  # noqa: E402
from prefect.deployments import run_deployment  # noqa: E402
from prefect.states import Cancelling  # noqa: E402

import shared_etl.errors  # noqa: E402
from shared_etl.cli import run_command  # noqa: E402
from shared_etl.errors import PipelineError  # noqa: E402

ONE_RUN = "events-daily-metrics/deployed"
BACKFILL = "events-backfill/deployed"
TIMEOUT = float(os.environ.get("PREFECT_DEPLOYED_TIMEOUT", "900"))
POLL_SECONDS = 0.5


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


def _submit_and_follow(deployment: str, parameters: dict) -> None:
    """A deployment run with `parameters`, followed until it ends; a failure is raised as the
    pipeline error the flow raised in the worker, so the exit status is local mode's."""
    fail_attempts = os.environ.get("ETL_FAIL_ATTEMPTS")
    job_variables = {"env": {"ETL_FAIL_ATTEMPTS": fail_attempts}} if fail_attempts else None
    flow_run = run_deployment(
        deployment, parameters=parameters, job_variables=job_variables, timeout=0,
        as_subflow=False, tags=["make"],
    )  # fmt: skip
    url = f"http://127.0.0.1:{STACK['PREFECT_PORT']}/runs/flow-run/{flow_run.id}"
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
    """Poll the flow run and its task runs, print every state change; the final state."""
    deadline = time.monotonic() + TIMEOUT
    seen: dict[UUID, str] = {}
    only_this_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    while True:
        flow_run = client.read_flow_run(flow_run_id)
        task_runs = client.read_task_runs(flow_run_filter=only_this_run)
        for task_run in sorted(task_runs, key=lambda run: run.expected_start_time):
            _report(seen, task_run, f"task {task_run.name}")
        _report(seen, flow_run, f"flow run {deployment}")
        if flow_run.state is not None and flow_run.state.is_final():
            return flow_run.state
        if time.monotonic() > deadline:
            raise PipelineError(
                f"flow run {flow_run_id} did not end within {TIMEOUT:.0f} s"
                " (PREFECT_DEPLOYED_TIMEOUT); it has been cancelled"
            )
        time.sleep(POLL_SECONDS)


def _report(seen: dict, run, what: str) -> None:
    """One line per new state of `run` (a retry is a new state with a higher run_count)."""
    if run.state is None or seen.get(run.id) == (run.state.name, run.run_count):
        return
    seen[run.id] = (run.state.name, run.run_count)
    if run.state.name == "AwaitingRetry":
        _say(f"{what}: attempt {run.run_count} failed, retrying")
        return
    attempt = f" (attempt {run.run_count})" if run.run_count > 1 else ""
    message = f": {run.state.message}" if run.state.is_failed() or run.state.is_crashed() else ""
    _say(f"{what}: {run.state.name}{attempt}{message}")


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
