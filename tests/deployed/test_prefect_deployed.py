"""Prefect in deployed mode: runs of the deployments in prefect/prefect.yaml, taken by the
stack's two process workers from the `events` pool, write the reference runner's bytes.
Attempts and which worker ran what are read from Prefect's own API, never from our code."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROJECT, SAMPLE, assert_same_parquet, make
from tests.deployed.conftest import (
    DATES,
    deployed,
    http_status,
    orchestrator_record,
    settings,
    stack_processes,
    up,
)

PYTHON = PROJECT / ".venvs" / "prefect" / "bin" / "python"


@pytest.fixture
def api():
    """POST a JSON body to the running stack's Prefect API; the decoded answer."""
    up()
    base = f"http://127.0.0.1:{settings()['PREFECT_PORT']}/api"

    def call(path: str, body: dict) -> dict | list:
        status, answer = http_status(base + path, body)
        assert status == 200, path
        return json.loads(answer)

    return call


def flow_run_id(output: Path) -> str:
    return orchestrator_record(output)["flow_run_id"]


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
    assert "attempt 1 failed, retrying" in result.stdout
    assert_same_parquet(output, truth / "sample.parquet")
    task_runs = api("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id(output)]}}})
    [aggregate] = [run for run in task_runs if run["name"].startswith("aggregate")]
    assert aggregate["run_count"] == 3


def test_a_missing_input_fails_with_one_line_and_exit_2_writing_nothing(api, tmp_path):
    up()
    output = tmp_path / "out" / "prefect_output.parquet"
    result = subprocess.run(
        [str(PYTHON), "prefect/run_deployed.py", "--input-path", str(tmp_path / "missing.csv"),
         "--output-path", str(output)],
        capture_output=True, text=True, cwd=PROJECT, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "missing.csv" in result.stderr
    assert not output.parent.exists() or list(output.parent.iterdir()) == []


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
    """MODE=local never touches the stack: the same command as before deployed mode."""
    dry = make("-n", "prefect", f"OUTPUT={tmp_path / 'o.parquet'}")
    assert "prefect/flow.py" in dry.stdout
    assert "-m stack" not in dry.stdout
