"""Contract §9 for the Airflow wrapper: runs side by side, kills, machine faults — real processes,
the adapter's dag.test() runs on its own SQLite database (.state/airflow-pipelines), real
SIGKILLs and real filesystems. The events pipeline is run with its own flags (parity/cli.py),
as `make airflow` runs it; the expected bytes and lines are the reference runner's."""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conformance.runs import started_make
from tests.conformance.runs import wait_until as wait_until_started
from tests.conformance.test_declared_pipelines import HELD
from tests.conftest import ORDERS, PROJECT, SAMPLE, make, run_reference

PYTHON = PROJECT / ".venvs" / "airflow" / "bin" / "python"
ADAPTER = PROJECT / "airflow" / "adapter.py"
SHOP = PROJECT / "examples" / "shop" / "shop.py"
PIPELINES_DB = PROJECT / ".state" / "airflow-pipelines" / "airflow.db"  # the adapter's
STAGING = PROJECT / ".state" / "staging"
AREAS = "airflow-adapter-py-*"  # the staging areas of the adapter's commands (parity.cli)
EVENTS = "dag_id = 'events_daily_metrics'"

pytestmark = [
    pytest.mark.orchestrators,
    pytest.mark.exclusive_state,  # "the next run marks the killed one": no other run between
    pytest.mark.skipif(not PYTHON.exists(), reason="run `make setup` first"),
]


def airflow(*args: str, staging: Path = STAGING, **popen) -> subprocess.Popen:
    """airflow/adapter.py in a session and process group of its own, as a shell starts it."""
    environment = {**os.environ, "ETL_STAGING_ROOT": str(staging)}
    return subprocess.Popen([str(PYTHON), str(ADAPTER), *args], cwd=PROJECT, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **popen)  # fmt: skip


def finish(process: subprocess.Popen, timeout: float = 900) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, session...)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_tree(root: int) -> set[tuple[int, str]]:
    """`root` and every live process below it, as (pid, start time): a process title set by
    Airflow's services (setproctitle) cannot hide them from the parent links."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
            started[int(entry)] = fields[19]
    found, pending = set(), [root]
    while pending:
        pid = pending.pop()
        if pid in started:
            found.add((pid, started[pid]))
        pending.extend(children.get(pid, []))
    return found


def still_alive(processes: set[tuple[int, str]]) -> list[int]:
    """The processes of `processes` still running, and any process in one of their sessions
    (what they forked after the snapshot), except this test's own session."""
    sessions = {fields[4] for pid, _ in processes if (fields := _stat(pid))} - {
        _stat(os.getpid())[4]
    }
    alive = []
    for entry in os.listdir("/proc"):
        fields = _stat(int(entry)) if entry.isdigit() else None
        if fields and fields[0] != "Z" and ((int(entry), fields[19]) in processes
                                            or fields[4] in sessions):  # fmt: skip
            alive.append(int(entry))
    return alive


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout} s: {what}")


def reference_backfill(source: Path, start: str, end: str, folder: Path) -> Path:
    result = run_reference("--input-path", str(source), "--start", start, "--end", end,
                           "--output-dir", str(folder))  # fmt: skip
    assert result.returncode == 0, result.stderr
    return folder


def same_files(expected: Path, actual: Path) -> None:
    names = sorted(path.name for path in expected.glob("*.parquet"))
    assert names and names == sorted(path.name for path in actual.glob("*.parquet"))
    for name in names:
        assert (expected / name).read_bytes() == (actual / name).read_bytes(), name


def dag_runs(where: str, *args) -> list[tuple]:
    return pipeline_runs(where, *args)


def run_ids(out: str) -> list[str]:
    """The DAG runs a command reports (adapter.py: `airflow: <dag>: dag run <id>: <state>`)."""
    return re.findall(r"^airflow: events_daily_metrics: dag run (\S+): ", out, re.MULTILINE)


def tries(run_id: str) -> dict[str, tuple[int, str]]:
    """Airflow's record of each task of a run: (try_number, state)."""
    with sqlite3.connect(PIPELINES_DB) as db:
        rows = db.execute("SELECT task_id, try_number, state FROM task_instance WHERE "
                          f"{EVENTS} AND run_id = ?", (run_id,)).fetchall()  # fmt: skip
    return {task: (number, state) for task, number, state in rows}


def reference_error(*args: str) -> str:
    """The one line the reference runner ends the same command with."""
    result = run_reference(*args)
    assert result.returncode != 0, result.stdout
    return _one_line(result.stderr)


def new_running_run(before: set[str]) -> str | None:
    """A run of the events DAG that is running now and was not in `before`: a task at work."""
    running = {run for run, _ in dag_runs(f"{EVENTS} AND state = 'running'")} - before
    return next(iter(running), None)


@pytest.fixture(scope="module")
def other_input(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("input") / "other.csv"
    result = subprocess.run(
        [str(PROJECT / ".venvs" / "reference" / "bin" / "python"), "-m", "shared_etl.generate",
         "--rows", "3000", "--seed", "7", "--start", "2024-01-01", "--days", "2",
         "--output", str(path)],
        capture_output=True, text=True, cwd=PROJECT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def large_input(tmp_path_factory) -> Path:
    """Large enough that a task is still working when the test kills the run."""
    path = tmp_path_factory.mktemp("large") / "large.csv"
    result = subprocess.run(
        [str(PROJECT / ".venvs" / "reference" / "bin" / "python"), "-m", "shared_etl.generate",
         "--rows", "400000", "--seed", "3", "--start", "2024-01-01", "--days", "2",
         "--output", str(path)],
        capture_output=True, text=True, cwd=PROJECT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return path


def test_two_backfills_at_once_each_write_their_own_data(other_input, tmp_path):
    first = airflow("--input-path", str(SAMPLE), "--start", "2024-01-01", "--end", "2024-01-02",
                    "--output-dir", str(tmp_path / "first"))  # fmt: skip
    second = airflow("--input-path", str(other_input), "--start", "2024-01-01",
                     "--end", "2024-01-02", "--output-dir", str(tmp_path / "second"))  # fmt: skip
    (code1, _, err1), (code2, _, err2) = finish(first), finish(second)
    assert (code1, code2) == (0, 0), err1 + err2
    same_files(reference_backfill(SAMPLE, "2024-01-01", "2024-01-02", tmp_path / "r1"),
               tmp_path / "first")  # fmt: skip
    same_files(reference_backfill(other_input, "2024-01-01", "2024-01-02", tmp_path / "r2"),
               tmp_path / "second")  # fmt: skip
    with sqlite3.connect(PIPELINES_DB) as db:
        paused = db.execute(f"SELECT is_paused FROM dag WHERE {EVENTS}").fetchone()
    assert paused == (1,), "the DAG is left unpaused"


def test_two_runs_and_a_backfill_at_once_each_write_their_own_data(other_input, tmp_path):
    runs = [
        airflow("--input-path", str(SAMPLE), "--output-path", str(tmp_path / "a.parquet")),
        airflow("--input-path", str(other_input), "--output-path", str(tmp_path / "b.parquet")),
        airflow("--input-path", str(other_input), "--start", "2024-01-02", "--end", "2024-01-02",
                "--output-dir", str(tmp_path / "backfill")),
    ]  # fmt: skip
    results = [finish(run) for run in runs]
    assert [code for code, _, _ in results] == [0, 0, 0], [err for _, _, err in results]
    for source, name in [(SAMPLE, "a.parquet"), (other_input, "b.parquet")]:
        expected = tmp_path / "reference" / name
        assert run_reference("--input-path", str(source), "--output-path",
                             str(expected)).returncode == 0  # fmt: skip
        assert expected.read_bytes() == (tmp_path / name).read_bytes(), name
    same_files(reference_backfill(other_input, "2024-01-02", "2024-01-02", tmp_path / "r"),
               tmp_path / "backfill")  # fmt: skip


@pytest.mark.parametrize("target", ["process group", "adapter.py alone"])
def test_a_killed_backfill_leaves_no_process_and_the_next_one_succeeds(
    target, large_input, tmp_path
):
    before = {run for run, _ in dag_runs(EVENTS)}
    driver = airflow("--input-path", str(large_input), "--start", "2024-01-01",
                     "--end", "2024-01-02", "--output-dir", str(tmp_path / "killed"))  # fmt: skip
    wait_until(lambda: new_running_run(before), 600, "a backfill run at work")
    started = process_tree(driver.pid)
    assert started  # dag.test() runs the tasks in the driver's process
    if target == "process group":
        os.killpg(driver.pid, signal.SIGKILL)
    else:
        os.kill(driver.pid, signal.SIGKILL)
    driver.communicate()
    wait_until(lambda: not still_alive(started), 30, "every process of the killed run ended")
    assert not list((tmp_path / "killed").glob("*.parquet"))

    result = airflow("--input-path", str(SAMPLE), "--start", "2024-01-01", "--end", "2024-01-02",
                     "--output-dir", str(tmp_path / "next"))  # fmt: skip
    code, out, err = finish(result)
    assert code == 0, err
    assert "of a killed run" in out  # then replaced: dag.test() of the same logical date
    same_files(reference_backfill(SAMPLE, "2024-01-01", "2024-01-02", tmp_path / "r"),
               tmp_path / "next")  # fmt: skip
    assert not list((tmp_path / "killed").glob("*.parquet")), "the killed run wrote later"
    assert not list(STAGING.glob(AREAS)), "a staging area was left behind"
    assert not dag_runs(f"{EVENTS} AND state IN ('running', 'queued')")


def test_a_killed_run_is_marked_failed_by_the_next_run(large_input, tmp_path):
    before = {run for run, _ in dag_runs(EVENTS)}
    driver = airflow("--input-path", str(large_input), "--output-path",
                     str(tmp_path / "killed.parquet"))  # fmt: skip
    run_id = wait_until(lambda: new_running_run(before), 300, "the run's first task started")
    os.killpg(driver.pid, signal.SIGKILL)
    driver.communicate()
    code, _, err = finish(airflow("--input-path", str(SAMPLE), "--output-path",
                                  str(tmp_path / "next.parquet")))  # fmt: skip
    assert code == 0, err
    assert dict(dag_runs("run_id = ?", run_id)) == {run_id: "failed"}
    assert not list(STAGING.glob(AREAS)), "the killed run's staging was left"
    assert not (tmp_path / "killed.parquet").exists()


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_an_output_folder_that_is_a_file_fails_a_backfill_at_once_with_one_line(tmp_path):
    folder = tmp_path / "a-file"
    folder.write_text("not a folder")
    started = time.monotonic()
    code, _, err = finish(airflow("--input-path", str(SAMPLE), "--start", "2024-01-01",
                                  "--end", "2024-01-02", "--output-dir", str(folder)))  # fmt: skip
    assert code == 1
    assert _one_line(err) == f"error: {folder}: is a file, not a folder for the outputs"
    assert time.monotonic() - started < 60, "the backfill started before the output was checked"


@pytest.fixture
def full_folder(mount) -> Path:
    return mount("12k")


def test_a_full_disk_fails_a_run_with_one_line_and_no_retry(full_folder):
    code, out, err = finish(airflow("--input-path", str(SAMPLE), "--output-path",
                                    str(full_folder / "x.parquet")))  # fmt: skip
    assert code == 1
    assert _one_line(err) == f"error: {full_folder}: cannot write: No space left on device"
    assert list(full_folder.iterdir()) == []
    [run_id] = run_ids(out)
    assert tries(run_id)["publish"] == (1, "failed"), "the fault was not publish's"


def test_a_full_disk_under_the_staging_fails_a_backfill_with_one_line_and_no_retry(
    full_folder, tmp_path
):
    """`validated` has two retries, but a machine fault is no transient one: one try."""
    day = "2024-01-04"
    code, out, err = finish(airflow("--input-path", str(SAMPLE), "--start", day, "--end", day,
                                    "--output-dir", str(tmp_path / "out"),
                                    staging=full_folder))  # fmt: skip
    assert code == 1
    line = _one_line(err)
    assert line.startswith(f"error: {full_folder}/"), line  # the staged file, named
    assert line.endswith("validated.kept.arrow: cannot stage a result: No space left on device")
    [run_id] = run_ids(out)
    assert tries(run_id)["validated"] == (1, "failed"), "a machine fault was retried"
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.parquet"))


def test_a_missing_input_fails_a_backfill_with_exit_2_naming_the_file(tmp_path):
    missing = tmp_path / "missing.csv"
    window = ("--input-path", str(missing), "--start", "2024-01-01", "--end", "2024-01-01")
    code, out, err = finish(airflow(*window, "--output-dir", str(tmp_path / "airflow")))
    assert code == 2
    line = _one_line(err)
    assert line.endswith(f"{missing}: no such file")
    assert line == reference_error(*window, "--output-dir", str(tmp_path / "reference"))
    [run_id] = run_ids(out)
    assert tries(run_id)["validated"] == (1, "failed"), "an input error was retried"


def test_a_killed_run_of_a_declared_pipeline_is_marked_failed_by_the_next_run(tmp_path):
    """The same for any pipeline, through the adapter's dag.test() runs (parity.liveness)."""
    (tmp_path / "held.py").write_text(HELD)
    signal_file = tmp_path / "started"
    pipeline = f"PIPELINE={tmp_path / 'held.py'}"
    params = json.dumps({"signal": str(signal_file), "hold": 600})
    before = pipeline_runs("dag_id = 'held'")  # an earlier test's, closed or not
    with started_make(tmp_path / "logs", "airflow", pipeline, f"PARAMS={params}",
                      f"OUTPUT_DIR={tmp_path / 'killed'}") as killed:  # fmt: skip
        wait_until_started(signal_file.exists, killed, "the first step", 300)
        running = pipeline_runs("dag_id = 'held' AND state = 'running'")
        running = [run for run in running if run[0] not in dict(before)]
        killed.kill_group()
    assert len(running) == 1, running

    params = json.dumps({"signal": str(signal_file)})
    result = make("airflow", pipeline, f"PARAMS={params}", f"OUTPUT_DIR={tmp_path / 'next'}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert pipeline_runs("run_id = ?", running[0][0]) == [(running[0][0], "failed")]


def pipeline_runs(where: str, *args) -> list[tuple]:
    if not PIPELINES_DB.exists():
        return []
    with sqlite3.connect(PIPELINES_DB) as db:
        return db.execute(f"SELECT run_id, state FROM dag_run WHERE {where}", args).fetchall()


def test_first_runs_of_declared_pipelines_at_once_on_a_new_database_all_pass(tmp_path):
    """Each dag.test() writes the DAG bundles' rows and its DAG's: on a new database, runs at
    once would each insert them (UNIQUE constraint failed: dag_bundle.name; then, for two first
    runs of one DAG, its own rows). Two runs of each of three pipelines, all at once; failed
    without the fix every time it was tried. The adapter's own Airflow is set aside meanwhile."""
    home, aside = PIPELINES_DB.parent, tmp_path / "set-aside"
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("orders.py", "orders.csv"):
        shutil.copy(ORDERS / name, mine / name)
    pipelines = {"events": "shared_etl.pipeline", "shop": str(SHOP),
                 "orders": str(mine / "orders.py")}  # fmt: skip
    pipelines |= {f"{name}-again": pipeline for name, pipeline in pipelines.items()}
    if home.exists():
        shutil.move(home, aside)
    try:
        with ExitStack() as held:
            started = {name: held.enter_context(started_make(
                           tmp_path / "logs", "airflow", f"PIPELINE={pipeline}",
                           f"OUTPUT_DIR={tmp_path / name}"))
                       for name, pipeline in pipelines.items()}  # fmt: skip
            results = {name: run.wait() for name, run in started.items()}
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if aside.exists():
            shutil.move(aside, home)
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr)
