"""Airflow in deployed mode: the events pipeline's DAG (`events_daily_metrics`, registered with
the stack at `make up`), its runs triggered with conf, a backfill one run per date, scheduled
by the stack's scheduler on PostgreSQL and executed by its two Celery workers through Redis,
write the reference runner's bytes. Attempts and which worker ran what are read from
Airflow's own PostgreSQL database and REST API, never from our code."""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT, SAMPLE, assert_same_parquet
from tests.deployed.conftest import (
    DATES,
    LOOPBACK,
    airflow_token,
    assert_local_modes_retry_lines,
    deployed,
    settings,
    up,
)

pytestmark = pytest.mark.deployed

PYTHON = PROJECT / ".venvs" / "airflow" / "bin" / "python"
SUBMIT = "airflow/run_pipeline_deployed.py"  # what `make airflow MODE=deployed` runs
PSQL_QUERY = """
import json, sys
import psycopg2
connection = psycopg2.connect(sys.argv[1])
with connection, connection.cursor() as cursor:
    cursor.execute(sys.argv[2], json.loads(sys.argv[3]))
    print(json.dumps(cursor.fetchall(), default=str))
"""


def query(sql: str, *args) -> list[list]:
    """Rows from Airflow's metadata database on the stack's PostgreSQL (psycopg2 lives in
    the Airflow environment, so the query runs there)."""
    values = settings()
    dsn = (f"host=127.0.0.1 port={values['STACK_PG_PORT']} dbname=airflow "
           f"user={values['STACK_PG_USER']} password={values['STACK_PG_PASSWORD']}")  # fmt: skip
    result = subprocess.run([str(PYTHON), "-c", PSQL_QUERY, dsn, sql, json.dumps(args)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def api(path: str) -> dict:
    """GET from the stack's Airflow REST API v2 with a token of the simple auth manager
    (for the stack's user and password)."""
    base = f"http://127.0.0.1:{settings()['AIRFLOW_PORT']}"
    token = airflow_token(base)
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with LOOPBACK.open(request, timeout=30) as response:
        assert response.status == 200, path
        return json.loads(response.read())


@pytest.fixture(scope="module")
def stack() -> None:
    up()


def run_id_of(output: Path) -> str:
    """The DAG run that wrote `output`, as its manifest records it (the adapter's `wrapper`)."""
    manifest = output.with_name(output.name.replace(".parquet", ".manifest.json"))
    return json.loads(manifest.read_text())["wrapper"]["run_id"]


def test_a_deployed_run_writes_the_reference_bytes_through_a_triggered_dag_run(
    stack, truth, tmp_path
):
    output = tmp_path / "airflow_output.parquet"
    result = deployed("airflow", f"OUTPUT={output}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_same_parquet(output, truth / "sample.parquet")
    [[run_type, state, conf]] = query(
        "SELECT run_type, state, conf::text FROM dag_run WHERE run_id = %s", run_id_of(output)
    )
    assert (run_type, state) == ("manual", "success")
    assert json.loads(conf)["output_dir"] == str(output)


def test_a_date_parameter_reaches_the_workers(stack, truth, tmp_path):
    output = tmp_path / "day.parquet"
    result = deployed("airflow", f"OUTPUT={output}", f"DATE={DATES[2]}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_same_parquet(output, truth / f"{DATES[2]}.parquet")


def test_relative_paths_mean_the_project_folder_whatever_the_workers_folder(stack, truth):
    relative = Path(".state") / "tests" / "airflow-deployed" / "relative.parquet"
    shutil.rmtree(PROJECT / relative.parent, ignore_errors=True)
    try:
        result = deployed("airflow", f"INPUT={SAMPLE.relative_to(PROJECT)}", f"OUTPUT={relative}")
        assert result.returncode == 0, result.stdout + result.stderr
        assert_same_parquet(PROJECT / relative, truth / "sample.parquet")
    finally:
        shutil.rmtree(PROJECT / relative.parent, ignore_errors=True)


def test_retries_happen_in_the_workers_and_airflow_records_three_tries(stack, truth, tmp_path):
    output = tmp_path / "retried.parquet"
    result = deployed("airflow", f"OUTPUT={output}", env={"ETL_FAIL_ATTEMPTS": "2"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert_local_modes_retry_lines(result.stdout, limit=" of 3")
    assert_same_parquet(output, truth / "sample.parquet")
    [[tries]] = query(
        "SELECT try_number FROM task_instance WHERE run_id = %s AND task_id = 'metrics'",
        run_id_of(output),
    )
    assert tries == 3


def test_a_missing_input_fails_with_one_line_and_exit_2_writing_nothing(stack, tmp_path):
    output = tmp_path / "out" / "airflow_output.parquet"
    result = subprocess.run(
        [str(PYTHON), SUBMIT, "--input-path", str(tmp_path / "missing.csv"),
         "--output-path", str(output)],
        capture_output=True, text=True, cwd=PROJECT, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert f"{tmp_path / 'missing.csv'}: no such file" in result.stderr
    assert not output.parent.exists() or list(output.parent.iterdir()) == []


def test_a_backfill_writes_each_date_and_both_celery_workers_ran_its_tasks(stack, truth, tmp_path):
    result = deployed(
        "backfill-airflow", f"START={DATES[0]}", f"END={DATES[-1]}", f"OUTPUT_DIR={tmp_path}"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for day in DATES:
        assert_same_parquet(tmp_path / "airflow" / f"{day}.parquet", truth / f"{day}.parquet")
    run_ids = [run_id_of(tmp_path / "airflow" / f"{day}.parquet") for day in DATES]
    assert len(set(run_ids)) == len(DATES)  # one DAG run per date
    rows = query(
        "SELECT run_id, task_id, state, hostname, pid, queued_by_job_id FROM task_instance"
        " WHERE dag_id = 'events_daily_metrics' AND run_id = ANY(%s)",
        run_ids,
    )
    tasks = ("validated", "metrics", "rejects", "publish")
    assert sorted(row[1] for row in rows) == sorted(tasks * len(DATES)), rows
    assert {row[2] for row in rows} == {"success"}
    # The Celery hostname (-H worker-N@host) is what Airflow records as the task's hostname.
    workers = {row[3].split("@")[0] for row in rows}
    assert workers == {"worker-1", "worker-2"}, rows


def test_the_api_server_answers_and_lists_the_runs(stack, tmp_path):
    output = tmp_path / "listed.parquet"
    assert deployed("airflow", f"OUTPUT={output}").returncode == 0
    health = api("/api/v2/monitor/health")
    assert health["metadatabase"]["status"] == "healthy"
    assert health["scheduler"]["status"] == "healthy"
    runs = api("/api/v2/dags/events_daily_metrics/dagRuns?limit=1000&order_by=-id")
    assert run_id_of(output) in {run["dag_run_id"] for run in runs["dag_runs"]}
    with LOOPBACK.open(
        urllib.request.Request(
            f"http://127.0.0.1:{settings()['AIRFLOW_PORT']}/dags/events_daily_metrics",
            headers={"Accept": "text/html"},
        ),
        timeout=30,
    ) as page:
        assert page.status == 200 and b"<html" in page.read().lower()


def test_two_backfills_of_the_same_dates_at_once_both_write_the_reference_bytes(
    stack, truth, tmp_path
):
    """A backfill is one DAG run per date with no logical date: two of the same dates at once
    are four runs side by side, none waiting for or replacing another."""
    backfills = [
        subprocess.Popen(
            [str(PYTHON), SUBMIT, "--input-path", str(SAMPLE),
             "--start", DATES[0], "--end", DATES[1], "--output-dir", str(tmp_path / name)],
            cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name in ("first", "second")
    ]  # fmt: skip
    results = [process.communicate(timeout=900) for process in backfills]
    assert [process.returncode for process in backfills] == [0, 0], results
    run_ids = set()
    for name in ("first", "second"):
        for day in DATES[:2]:
            assert_same_parquet(tmp_path / name / f"{day}.parquet", truth / f"{day}.parquet")
            run_ids.add(run_id_of(tmp_path / name / f"{day}.parquet"))
    assert len(run_ids) == 4
    states = query("SELECT state FROM dag_run WHERE dag_id = 'events_daily_metrics'"
                   " AND run_id = ANY(%s)", sorted(run_ids))  # fmt: skip
    assert states == [["success"]] * 4


def test_a_full_disk_fails_a_backfill_with_the_tasks_own_line_and_no_retry(stack, mount):
    full = mount("12k")
    result = subprocess.run(
        [str(PYTHON), SUBMIT, "--input-path", str(SAMPLE),
         "--start", DATES[3], "--end", DATES[3], "--output-dir", str(full)],
        capture_output=True, text=True, cwd=PROJECT, check=False,
    )  # fmt: skip
    assert list(full.iterdir()) == []
    assert result.returncode == 1, result.stdout + result.stderr
    # The failed task's own line, as local mode ends with it (tests/test_airflow_hardening.py).
    assert result.stderr.splitlines() == [
        f"error: {full}: cannot write: No space left on device"
    ]
    assert "up_for_retry" not in result.stdout


def test_the_run_of_a_killed_command_stops_at_its_next_task_and_writes_nothing(
    stack, tmp_path_factory, tmp_path
):
    source = tmp_path_factory.mktemp("large") / "large.csv"
    generated = subprocess.run(
        [str(PROJECT / ".venvs" / "reference" / "bin" / "python"), "-m", "shared_etl.generate",
         "--rows", "300000", "--seed", "5", "--start", "2024-01-01", "--days", "2",
         "--output", str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    output = tmp_path / "killed.parquet"
    command = subprocess.Popen(
        [str(PYTHON), SUBMIT, "--input-path", str(source), "--output-path", str(output)],
        cwd=PROJECT, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    run_id = None
    for line in command.stdout:
        if "triggered dag run" in line:
            run_id = line.split("triggered dag run ")[1].split()[0]
        if run_id and "validated: running" in line:  # the first step's task at work
            break
    os.killpg(command.pid, signal.SIGKILL)
    command.communicate()
    deadline = time.monotonic() + 600
    while (state := api(f"/api/v2/dags/events_daily_metrics/dagRuns/{run_id}")["state"]) not in (
        "success", "failed"
    ):  # fmt: skip
        assert time.monotonic() < deadline, f"run {run_id} still {state}"
        time.sleep(1)
    assert state == "failed"
    [[metrics]] = query(
        "SELECT state FROM task_instance WHERE run_id = %s AND task_id = 'metrics'", run_id
    )
    assert metrics in ("failed", "upstream_failed")  # whichever task came next refused
    assert not output.exists()
