"""Dagster in deployed mode: the events pipeline's job in the stack's code location `pipelines`
(registered at `make up`), launched by dagster/run_pipeline_deployed.py on the stack's
webserver, daemon and code server (PostgreSQL storage, queued run coordinator, one process
per run), a backfill one launched run per date, writes the reference runner's bytes. What
ran, and how often, is read from Dagster's own API and its event log in PostgreSQL, never
from our code."""

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

from tests.conftest import PROJECT, SAMPLE, assert_same_parquet, run_reference
from tests.deployed.conftest import (
    DATES,
    assert_local_modes_retry_lines,
    dagster_headers,
    deployed,
    http_status,
    settings,
    up,
)

pytestmark = pytest.mark.deployed

PYTHON = PROJECT / ".venvs" / "dagster" / "bin" / "python"
SUBMITTER = "dagster/run_pipeline_deployed.py"
JOB, LOCATION = "events_daily_metrics_job", "pipelines"  # the events pipeline's, in the stack
LAUNCHED: list[str] = []  # run ids this module made, for the listing test


@pytest.fixture
def graphql():
    """Query the running stack's Dagster webserver (GraphQL) through its login proxy; the
    answer's `data`."""
    up()
    url = f"http://127.0.0.1:{settings()['DAGSTER_PORT']}/graphql"

    def query(text: str, **variables) -> dict:
        body = {"query": text, "variables": variables}
        status, answer = http_status(url, body, dagster_headers())
        assert status == 200
        decoded = json.loads(answer)
        assert "errors" not in decoded, decoded["errors"]
        return decoded["data"]

    return query


def run_id(output: Path) -> str:
    """The run that published `output`, as its manifest names it (parity.execution)."""
    manifest = output.with_name(output.name.replace(".parquet", ".manifest.json"))
    found = json.loads(manifest.read_text())["wrapper"]["run_id"]
    LAUNCHED.append(found)
    return found


def tags_of(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["tags"]}


RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run {
    jobName status tags { key value } } } }"""
MESSAGES = """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection {
    events { ... on MessageEvent { message } } } } }"""


def test_a_deployed_run_is_a_launched_run_in_its_own_process_writing_the_reference_bytes(
    graphql, truth, tmp_path
):
    output = tmp_path / "dagster_output.parquet"
    result = deployed("dagster", f"OUTPUT={output}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_same_parquet(output, truth / "sample.parquet")
    run = graphql(RUN, id=run_id(output))["runOrError"]
    assert (run["jobName"], run["status"]) == (JOB, "SUCCESS")
    assert tags_of(run)["dagster/code_location"] == LOCATION
    for state in ("QUEUED", "STARTED", "SUCCESS"):  # followed through the queue
        assert f": {state}" in result.stdout, result.stdout
    events = graphql(MESSAGES, id=run_id(output))["logsForRun"]["events"]
    messages = [event.get("message", "") for event in events]
    [started] = [m for m in messages if m.startswith("Started process for run (pid:")]
    pid = re.search(r"pid: (\d+)", started).group(1)
    assert f"Process for run exited (pid: {pid})." in messages


def test_a_date_travels_as_the_runs_partition(graphql, truth, tmp_path):
    output = tmp_path / "dated.parquet"
    result = deployed("dagster", f"OUTPUT={output}", "DATE=2024-01-03")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_same_parquet(output, truth / "2024-01-03.parquet")
    run = graphql(RUN, id=run_id(output))["runOrError"]
    assert tags_of(run)["dagster/partition"] == "2024-01-03"


def test_a_deployed_backfill_is_one_launched_partition_run_per_date(graphql, truth, tmp_path):
    result = deployed(
        "backfill-dagster", f"START={DATES[0]}", f"END={DATES[-1]}", f"OUTPUT_DIR={tmp_path}"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = {}
    for day in DATES:
        output = tmp_path / "dagster" / f"{day}.parquet"
        assert_same_parquet(output, truth / f"{day}.parquet")
        runs[day] = run_id(output)
    assert len(set(runs.values())) == len(DATES), "two dates shared a run"
    for day, run in runs.items():
        found = graphql(RUN, id=run)["runOrError"]
        assert (found["jobName"], found["status"]) == (JOB, "SUCCESS")
        assert tags_of(found)["dagster/partition"] == day


def test_relative_paths_mean_the_project_folder_whatever_the_run_workers_folder(graphql, truth):
    relative = Path(".state") / "tests" / "dagster-deployed" / "relative.parquet"
    shutil.rmtree(PROJECT / relative.parent, ignore_errors=True)
    try:
        result = deployed("dagster", f"INPUT={SAMPLE.relative_to(PROJECT)}", f"OUTPUT={relative}")
        assert result.returncode == 0, result.stdout + result.stderr
        assert_same_parquet(PROJECT / relative, truth / "sample.parquet")
        run_id(PROJECT / relative)
    finally:
        shutil.rmtree(PROJECT / relative.parent, ignore_errors=True)


def attempts_in_postgres(run: str, step_key: str) -> int:
    """STEP_START plus STEP_RESTARTED of the step in Dagster's event log table (PostgreSQL)."""
    stack = settings()
    result = subprocess.run(
        [f"{stack['STACK_PG_BINDIR']}/psql", "-h", "127.0.0.1", "-p", stack["STACK_PG_PORT"],
         "-U", stack["STACK_PG_USER"], "-d", "dagster", "-At", "-c",
         "SELECT count(*) FROM event_logs WHERE run_id = '" + run + "' AND step_key = '"
         + step_key + "' AND dagster_event_type IN ('STEP_START', 'STEP_RESTARTED')"],
        capture_output=True, text=True, check=True,
        env={"PGPASSWORD": stack["STACK_PG_PASSWORD"], "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return int(result.stdout.strip())


def test_retries_happen_in_the_run_worker_and_postgres_records_three_attempts(
    graphql, truth, tmp_path
):
    output = tmp_path / "retried.parquet"
    result = deployed("dagster", f"OUTPUT={output}", env={"ETL_FAIL_ATTEMPTS": "2"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "step metrics: IN_PROGRESS (attempt 2)" in result.stdout
    assert_local_modes_retry_lines(result.stdout)
    assert_same_parquet(output, truth / "sample.parquet")
    assert attempts_in_postgres(run_id(output), "metrics") == 3


def test_a_missing_input_fails_with_one_line_and_exit_2_writing_nothing(graphql, tmp_path):
    output = tmp_path / "out" / "dagster_output.parquet"
    arguments = ["--input-path", str(tmp_path / "missing.csv"), "--output-path", str(output)]
    result = subprocess.run([str(PYTHON), SUBMITTER, *arguments],
                            capture_output=True, text=True, cwd=PROJECT, check=False)  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    # the reference runner's line for the same input
    expected = run_reference(*arguments[:2], "--output-path", str(tmp_path / "ref" / "x.parquet"))
    assert expected.returncode == 2
    assert result.stderr.splitlines() == expected.stderr.splitlines()
    assert result.stderr.splitlines() == [
        f"error: step 'validated': {tmp_path / 'missing.csv'}: no such file"]  # fmt: skip
    assert not output.parent.exists() or list(output.parent.iterdir()) == []


def test_two_deployed_runs_side_by_side_each_write_their_own_inputs_bytes(graphql, truth, tmp_path):
    runs = {"sample": SAMPLE, "other": truth / "other_events.csv"}
    makes = {
        name: subprocess.Popen(
            ["make", "--no-print-directory", "dagster", "MODE=deployed", f"INPUT={source}",
             f"OUTPUT={tmp_path / name / 'out.parquet'}"],
            cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for name, source in runs.items()
    }  # fmt: skip
    for process in makes.values():
        log = process.communicate(timeout=900)[0]
        assert process.returncode == 0, log
    for name in runs:
        assert_same_parquet(tmp_path / name / "out.parquet", truth / f"{name}.parquet")
        run_id(tmp_path / name / "out.parquet")


def _run_process(graphql, run: str, seconds: float = 300) -> int:
    """The pid of the process executing `run`, as Dagster's event log names it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for event in graphql(MESSAGES, id=run)["logsForRun"]["events"]:
            if found := re.match(r"Executing steps in process \(pid: (\d+)\)",
                                 event.get("message", "")):  # fmt: skip
                return int(found.group(1))
        time.sleep(0.2)
    raise AssertionError(f"run {run} did not start executing within {seconds} s")


def test_a_run_worker_killed_mid_run_fails_the_run_in_one_line_and_the_next_run_passes(
    graphql, tmp_path
):
    source = tmp_path / "large.csv"
    subprocess.run(
        [sys.executable, "-m", "shared_etl.generate", "--rows", "300000", "--seed", "7",
         "--start", "2024-03-01", "--days", "7", "--output", str(source)],
        check=True, cwd=PROJECT, capture_output=True,
    )  # fmt: skip
    output = tmp_path / "out" / "large.parquet"
    command = [str(PYTHON), SUBMITTER, "--input-path", str(source),
               "--output-path", str(output)]  # fmt: skip
    client = subprocess.Popen(command, cwd=PROJECT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    launched = client.stdout.readline()
    run = re.search(r"as run ([0-9a-f-]{36})", launched).group(1)
    os.kill(_run_process(graphql, run), signal.SIGKILL)
    stdout, stderr = client.communicate(timeout=900)
    assert client.returncode == 1, stdout + stderr
    assert stderr.splitlines() == [
        f"error: dagster run {run} failed: Run execution process for {run} was terminated"
        " by signal 9 (SIGKILL)"
    ]
    assert graphql(RUN, id=run)["runOrError"]["status"] == "FAILURE"
    assert not output.parent.exists() or list(output.parent.iterdir()) == []

    again = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert_same_parquet(output, run_reference_of(source, tmp_path / "reference.parquet"))
    run_id(output)


def run_reference_of(source: Path, output: Path) -> Path:
    result = run_reference("--input-path", str(source), "--output-path", str(output))
    assert result.returncode == 0, result.stderr
    return output


RUNS = """query($ids: [String!]) { runsOrError(filter: {runIds: $ids}) {
    ... on Runs { results { runId status } } } }"""


def test_the_webserver_answers_and_lists_the_runs_of_this_module(graphql):
    url = f"http://127.0.0.1:{settings()['DAGSTER_PORT']}/runs"
    status, page = http_status(url, headers=dagster_headers())
    assert status == 200 and b"<html" in page.lower()
    assert LAUNCHED, "no deployed run of this module recorded a run id"
    listed = graphql(RUNS, ids=LAUNCHED)["runsOrError"]["results"]
    assert {run["runId"] for run in listed} == set(LAUNCHED)
    assert {run["status"] for run in listed} == {"SUCCESS"}
