"""Prefect in deployed mode: runs of the events pipeline's deployments (`events_daily_metrics`
and `events_daily_metrics-backfill`, deployed at `make up` from prefect/prefect.yaml and again
by prefect/run_pipeline_deployed.py), taken by the stack's two process workers from the
`events` pool, write the reference runner's bytes. Attempts and which worker ran what are
read from Prefect's own API, never from our code."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import (
    PROJECT,
    SAMPLE,
    assert_same_parquet,
    make,
    run_reference,
    user_environment,
)
from tests.deployed.conftest import (
    DATES,
    deployed,
    http_status,
    prefect_headers,
    retry_lines,
    settings,
    stack_processes,
    up,
)

pytestmark = pytest.mark.deployed

PYTHON = PROJECT / ".venvs" / "prefect" / "bin" / "python"


@pytest.fixture
def api():
    """POST a JSON body to the running stack's Prefect API; the decoded answer."""
    up()
    base = f"http://127.0.0.1:{settings()['PREFECT_PORT']}/api"

    def call(path: str, body: dict) -> dict | list:
        status, answer = http_status(base + path, body, prefect_headers())
        assert status == 200, path
        return json.loads(answer)

    return call


def flow_run_id(output: Path) -> str:
    """The flow run that wrote `output`, as its manifest records it (the adapter's `wrapper`)."""
    manifest = output.with_name(output.name.replace(".parquet", ".manifest.json"))
    return json.loads(manifest.read_text())["wrapper"]["flow_run_id"]


def test_a_deployed_run_writes_the_reference_bytes_through_the_deployment(api, truth, tmp_path):
    output = tmp_path / "prefect_output.parquet"
    result = deployed("prefect", f"OUTPUT={output}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_same_parquet(output, truth / "sample.parquet")
    [flow_run] = api("/flow_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id(output)]}}})
    assert flow_run["state_type"] == "COMPLETED"
    assert flow_run["work_pool_name"] == "events"
    [deployment] = api("/deployments/filter", {"deployments": {"id": {"any_": [
        flow_run["deployment_id"]]}}})  # fmt: skip
    assert deployment["name"] == "deployed"
    [flow] = api("/flows/filter", {"flows": {"id": {"any_": [flow_run["flow_id"]]}}})
    assert flow["name"] == "events_daily_metrics"


def test_a_deployed_backfill_writes_the_reference_bytes_for_each_date(api, truth, tmp_path):
    result = deployed(
        "backfill-prefect", f"START={DATES[0]}", f"END={DATES[-1]}", f"OUTPUT_DIR={tmp_path}"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for day in DATES:
        assert_same_parquet(tmp_path / "prefect" / f"{day}.parquet", truth / f"{day}.parquet")


def test_relative_paths_mean_the_project_folder_whatever_the_workers_folder(api, truth):
    relative = Path(".state") / "tests" / "prefect-deployed" / "relative.parquet"
    shutil.rmtree(PROJECT / relative.parent, ignore_errors=True)
    try:
        result = deployed("prefect", f"INPUT={SAMPLE.relative_to(PROJECT)}", f"OUTPUT={relative}")
        assert result.returncode == 0, result.stdout + result.stderr
        assert_same_parquet(PROJECT / relative, truth / "sample.parquet")
    finally:
        shutil.rmtree(PROJECT / relative.parent, ignore_errors=True)


def test_retries_happen_in_the_workers_and_prefect_records_three_attempts(api, truth, tmp_path):
    output = tmp_path / "retried.parquet"
    result = deployed("prefect", f"OUTPUT={output}", env={"ETL_FAIL_ATTEMPTS": "2"})
    assert result.returncode == 0, result.stdout + result.stderr
    # Each retry is one line with the step, the attempt, the reason and the delay (issue 22):
    # the events pipeline's retry policy is two retries, one second apart (docs/front-door.md).
    retries = retry_lines(result.stdout)
    assert len(retries) == 2, result.stdout
    for attempt, line in enumerate(retries, start=1):
        assert line.split(" | ", 1)[1].startswith("task metrics"), line
        reason = f"TransientStepError('metrics: injected transient failure on attempt {attempt} "
        assert reason in line, line
        # Prefect's words for the declared delay, a float (parity.declaration): "1.0 second(s)"
        assert f"Retry {attempt}/2 will start 1.0 second(s) from now" in line
    assert_same_parquet(output, truth / "sample.parquet")
    task_runs = api("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id(output)]}}})
    [metrics] = [run for run in task_runs if run["name"].startswith("metrics")]
    assert metrics["run_count"] == 3


def test_a_missing_input_fails_with_one_line_and_exit_2_writing_nothing(api, tmp_path):
    up()
    output = tmp_path / "out" / "prefect_output.parquet"
    result = subprocess.run(
        [str(PYTHON), "prefect/run_pipeline_deployed.py", "--input-path",
         str(tmp_path / "missing.csv"),
         "--output-path", str(output)],
        capture_output=True, text=True, cwd=PROJECT, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "missing.csv" in result.stderr
    assert not output.parent.exists() or list(output.parent.iterdir()) == []


def worker_pids() -> dict[str, str]:
    """The pid supervisor reports for each Prefect worker (a restart changes it)."""
    status = make("status").stdout
    return dict(re.findall(r"^prefect:(worker-\d)\s+RUNNING\s+pid (\d+)", status, re.M))


def flow_run_processes(run: str) -> list[int]:
    """The processes running flow run `run`, found by the environment Prefect gives them."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            variables = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"PREFECT__FLOW_RUN_ID={run}".encode() in variables:
            found.append(int(proc.name))
    return found


def parent_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]


def wait_for_a_running_task(api, run: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        task_runs = api("/task_runs/filter", {"flow_runs": {"id": {"any_": [run]}}})
        if any(task_run["state_type"] == "RUNNING" for task_run in task_runs):
            return
        time.sleep(0.1)
    raise AssertionError(f"no task of flow run {run} was running within {seconds} s")


def test_a_flow_run_process_killed_mid_task_crashes_the_run_in_one_line_and_the_next_passes(
    api, tmp_path
):
    source = tmp_path / "large.csv"
    subprocess.run(
        [sys.executable, "-m", "shared_etl.generate", "--rows", "1000000", "--seed", "7",
         "--start", "2024-03-01", "--days", "3", "--output", str(source)],
        check=True, cwd=PROJECT, capture_output=True,
    )  # fmt: skip
    output = tmp_path / "out" / "large.parquet"
    workers = worker_pids()
    assert set(workers) == {"worker-1", "worker-2"}
    client = subprocess.Popen(
        ["make", "--no-print-directory", "prefect", "MODE=deployed", f"INPUT={source}",
         f"OUTPUT={output}"],
        cwd=PROJECT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, env=user_environment(),
    )  # fmt: skip
    try:
        run = next(found.group(1) for line in client.stdout
                   if (found := re.search(r"as flow run ([0-9a-f-]{36})", line)))  # fmt: skip
        wait_for_a_running_task(api, run)
        [process] = flow_run_processes(run)
        assert parent_of(process) in workers.values()
        os.kill(process, signal.SIGKILL)
        stdout, stderr = client.communicate(timeout=300)
    finally:
        if client.poll() is None:
            os.killpg(client.pid, signal.SIGKILL)
            client.wait()
    assert client.returncode != 0, stdout + stderr
    assert "] Error 1" in stderr  # make's report of run_pipeline_deployed.py's exit status
    assert [line for line in stderr.splitlines() if not line.startswith("make:")] == [
        f"error: flow run {run} crashed: Process exited with status code: -9. Process exited"
        " due to a SIGKILL signal. Typically caused by the operating system terminating the"
        " process for exceeding memory limits, or by manual cancellation."
    ]
    [flow_run] = api("/flow_runs/filter", {"flow_runs": {"id": {"any_": [run]}}})
    assert flow_run["state_type"] == "CRASHED"
    assert not output.parent.exists() or list(output.parent.iterdir()) == []
    assert worker_pids() == workers

    again = deployed("prefect", f"INPUT={source}", f"OUTPUT={output}")
    assert again.returncode == 0, again.stdout + again.stderr
    reference = tmp_path / "reference" / "large.parquet"
    truth = run_reference("--input-path", str(source), "--output-path", str(reference))
    assert truth.returncode == 0, truth.stderr
    assert_same_parquet(output, reference)
    assert sorted(path.name for path in output.parent.iterdir()) == [
        "large.manifest.json", "large.parquet", "large.rejects.parquet"]  # fmt: skip
    assert worker_pids() == workers


def side_by_side(outputs: list[Path]) -> None:
    """`make prefect MODE=deployed` for each output at once; all must succeed."""
    makes = [
        subprocess.Popen(
            ["make", "--no-print-directory", "prefect", "MODE=deployed", f"OUTPUT={output}"],
            cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for output in outputs
    ]  # fmt: skip
    for process in makes:
        log = process.communicate(timeout=900)[0]
        assert process.returncode == 0, log


def test_runs_submitted_together_are_taken_by_both_workers(api, truth, tmp_path):
    outputs = [tmp_path / f"side-{n}" / "prefect_output.parquet" for n in (1, 2)]
    side_by_side(outputs)
    workers = set()
    for output in outputs:
        assert_same_parquet(output, truth / "sample.parquet")
        submitted = api("/events/filter", {"filter": {
            "event": {"name": ["prefect.worker.submitted-flow-run"]},
            "related": {"id": [f"prefect.flow-run.{flow_run_id(output)}"]},
        }})  # fmt: skip
        workers |= {event["resource"]["prefect.resource.name"] for event in submitted["events"]}
    assert workers == {"worker-1", "worker-2"}


def test_with_the_stack_down_runs_start_it_share_it_and_stop_it_after_the_last(truth, tmp_path):
    assert make("down").returncode == 0
    outputs = [tmp_path / f"side-{n}" / "prefect_output.parquet" for n in (1, 2)]
    side_by_side(outputs)
    for output in outputs:
        assert_same_parquet(output, truth / "sample.parquet")
    assert stack_processes() == []


def test_local_mode_is_unchanged_by_the_stack(tmp_path):
    """MODE=local never touches the stack: the adapter runs in this process's own Prefect."""
    dry = make("-n", "prefect", f"OUTPUT={tmp_path / 'o.parquet'}")
    assert "prefect/adapter.py" in dry.stdout
    assert "-m stack" not in dry.stdout
