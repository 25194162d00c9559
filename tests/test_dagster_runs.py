"""Dagster runs side by side, killed, and on a faulty machine (contract §9), driven through `make`
and the wrapper's script as a user drives them, with real processes, kills and filesystems.

Each test has its own Dagster instance ($DAGSTER_HOME) and staging root, so what it checks in
them is its own doing.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conformance.runs import no_survivors, started_make, wait_until
from tests.conformance.test_declared_pipelines import HELD
from tests.conftest import PROJECT, SAMPLE, assert_same_parquet, make, run_reference

pytestmark = pytest.mark.orchestrators

SCRIPT = [str(PROJECT / ".venvs" / "dagster" / "bin" / "python"), "dagster/adapter.py"]
UNFINISHED = ("NOT_STARTED", "STARTING", "STARTED")


@pytest.fixture(scope="module", autouse=True)
def dagster_environment() -> None:
    result = subprocess.run(["make", "setup"], cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def generate(path: Path, rows: int, seed: int, start: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "shared_etl.generate", "--rows", str(rows), "--seed", str(seed),
         "--start", start, "--days", "7", "--output", str(path)],
        check=True, cwd=PROJECT, capture_output=True,
    )  # fmt: skip
    return path


def reference(source: Path, output: Path) -> Path:
    result = run_reference("--input-path", str(source), "--output-path", str(output))
    assert result.returncode == 0, result.stderr
    return output


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Named inputs with the reference runner's output of each: (csv, reference parquet)."""
    folder = tmp_path_factory.mktemp("inputs")
    sources = {
        "sample": SAMPLE,
        "other": generate(folder / "other.csv", 30_000, 5, "2024-02-10"),
        "large": generate(folder / "large.csv", 300_000, 7, "2024-03-01"),
    }
    return {name: (source, reference(source, folder / f"{name}.parquet"))
            for name, source in sources.items()}  # fmt: skip


class Place:
    """Where a test's runs keep their state: a Dagster home and a staging root of their own."""

    def __init__(self, folder: Path) -> None:
        self.home = folder / "dagster-home"
        self.staging = folder / "staging"
        self.home.mkdir(parents=True, exist_ok=True)

    def start(self, source: Path, output: Path) -> subprocess.Popen:
        """`make dagster` in a process group of its own, so a test can kill all of it."""
        return subprocess.Popen(
            ["make", "--no-print-directory", "dagster", f"INPUT={source}", f"OUTPUT={output}",
             f"ETL_STAGING_ROOT={self.staging}"],
            cwd=PROJECT, env={**os.environ, "DAGSTER_HOME": str(self.home)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip

    def run(self, source: Path, output: Path) -> subprocess.CompletedProcess:
        process = self.start(source, output)
        stdout, stderr = process.communicate(timeout=600)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def script(self, *arguments: str) -> subprocess.CompletedProcess:
        """The wrapper's own command, whose exit status is the project's 0/1/2 contract."""
        return subprocess.run(
            [*SCRIPT, *arguments], cwd=PROJECT, capture_output=True, text=True, timeout=600,
            env={**os.environ, "DAGSTER_HOME": str(self.home),
                 "ETL_STAGING_ROOT": str(self.staging)},
        )  # fmt: skip

    def run_statuses(self) -> dict[str, str]:
        """Every run's status in this instance's run storage (Dagster's own record)."""
        storage = self.home / "history" / "runs.db"
        if not storage.exists():
            return {}
        with sqlite3.connect(storage) as db:
            return dict(db.execute("SELECT run_id, status FROM runs").fetchall())

    def step_starts(self, run_id: str, step_key: str) -> int:
        with sqlite3.connect(self.home / "history" / "runs" / f"{run_id}.db") as db:
            (count,) = db.execute(
                "SELECT count(*) FROM event_logs WHERE step_key = ?"
                " AND dagster_event_type IN ('STEP_START', 'STEP_RESTARTED')",
                (step_key,),
            ).fetchone()
        return count


def _one_line(result: subprocess.CompletedProcess, *words: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert all(word in lines[0] for word in words), lines[0]


@pytest.mark.parametrize("attempt", range(3))
def test_two_runs_side_by_side_each_write_their_own_inputs_bytes(inputs, tmp_path, attempt):
    place = Place(tmp_path)
    runs = {name: (inputs[name], tmp_path / name / "out.parquet") for name in ("sample", "other")}
    started = {name: place.start(source, output) for name, ((source, _), output) in runs.items()}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, f"{name}: {stdout}{stderr}"
    for (_, expected), output in runs.values():
        assert_same_parquet(output, expected)


@pytest.mark.parametrize("attempt", range(2))
def test_three_first_runs_on_a_fresh_instance_all_pass_and_leave_it_usable(
    inputs, tmp_path, attempt
):
    place = Place(tmp_path)
    source, expected = inputs["sample"]
    outputs = [tmp_path / f"first-{n}" / "out.parquet" for n in range(3)]
    started = [place.start(source, output) for output in outputs]
    for process in started:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stdout + stderr
    later = place.run(source, tmp_path / "later" / "out.parquet")
    assert later.returncode == 0, later.stdout + later.stderr
    for output in [*outputs, tmp_path / "later" / "out.parquet"]:
        assert_same_parquet(output, expected)
    assert set(place.run_statuses().values()) == {"SUCCESS"}


def _wait_for(condition, process: subprocess.Popen, what: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"the run ended before {what}: {process.communicate()}"
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.01)


def _validating(staging: Path) -> bool:
    """The run's staging folder exists, the events `validated` keeps are not staged yet."""
    return any(staging.glob("*/dagster-*")) and not _computing_metrics(staging)


def _computing_metrics(staging: Path) -> bool:
    """The kept events are staged: the `metrics` step is reading them, or publish is."""
    return any(staging.glob("*/dagster-*/validated/validated.kept.arrow"))


KILL_POINTS = {"validated": _validating, "metrics": _computing_metrics}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_killed_run_leaves_nothing_behind_and_the_next_run_gives_the_same_bytes(
    inputs, tmp_path, point
):
    place = Place(tmp_path)
    source, expected = inputs["large"]
    output = tmp_path / "out" / "large.parquet"
    killed = place.start(source, output)
    _wait_for(lambda: KILL_POINTS[point](place.staging), killed, point)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    # Dagster's own orphan watcher (watch_orphans.py) notices within its 1 s poll, then ends.
    assert no_survivors("dagster") == [], "the killed run left processes running"
    assert not output.exists(), "a killed run published an output"
    [killed_run] = [run for run, status in place.run_statuses().items() if status in UNFINISHED]

    again = place.run(source, output)
    assert again.returncode == 0, again.stdout + again.stderr
    assert_same_parquet(output, expected)
    assert sorted(path.name for path in output.parent.iterdir()) == [
        "large.manifest.json", "large.parquet", "large.rejects.parquet"]  # fmt: skip
    assert list(place.staging.iterdir()) == [], "staging of the killed run was not cleared"
    statuses = place.run_statuses()
    assert statuses.pop(killed_run) == "FAILURE", "the killed run is still shown as running"
    assert set(statuses.values()) == {"SUCCESS"}


def test_a_full_disk_fails_the_run_with_one_line_and_is_not_retried(tmp_path, mount):
    place = Place(tmp_path)
    folder = mount("12k")
    result = place.script("--input-path", str(SAMPLE), "--output-path", str(folder / "x.parquet"))
    assert result.returncode == 1, result.stderr
    _one_line(result, str(folder), "No space left on device")
    assert list(folder.iterdir()) == [], "a temporary or partial file was left behind"
    [(run_id, status)] = place.run_statuses().items()
    assert status == "FAILURE"
    assert place.step_starts(run_id, "publish") == 1, "a machine fault was retried"


def test_a_backfill_into_a_read_only_folder_fails_before_the_input_is_read(tmp_path, mount):
    place = Place(tmp_path)
    folder = mount("1m", "ro")
    result = place.script("--input-path", str(SAMPLE), "--start", "2024-01-01",
                          "--end", "2024-01-02", "--output-dir", str(folder / "days"))  # fmt: skip
    assert result.returncode == 1, result.stderr
    _one_line(result, str(folder / "days"), "Read-only file system")
    assert place.run_statuses() == {}, "a run was started before the output folder was checked"


def test_a_backfill_into_a_file_fails_before_the_input_is_read(tmp_path):
    place = Place(tmp_path)
    blocker = tmp_path / "days"
    blocker.write_text("not a folder")
    result = place.script("--input-path", str(SAMPLE), "--start", "2024-01-01",
                          "--end", "2024-01-02", "--output-dir", str(blocker))  # fmt: skip
    assert result.returncode == 1, result.stderr
    _one_line(result, str(blocker), "is a file")
    assert place.run_statuses() == {}
    assert blocker.read_text() == "not a folder"


def test_a_failed_run_leaves_no_staging_behind(tmp_path):
    """Staging belongs to the run, not to a step: removed at the end whatever happened."""
    place = Place(tmp_path)
    output = tmp_path / "out" / "failed.parquet"
    result = subprocess.run(
        [*SCRIPT, "--input-path", str(SAMPLE), "--output-path", str(output)],
        cwd=PROJECT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "DAGSTER_HOME": str(place.home), "ETL_STAGING_ROOT": str(place.staging),
             "ETL_FAIL_ATTEMPTS": "3"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    _one_line(result, "metrics: injected transient failure on attempt 3")
    assert list(place.staging.iterdir()) == []


def test_a_killed_run_of_a_declared_pipeline_is_marked_failed_by_the_next_run(tmp_path):
    """The same for any pipeline, through the adapter (parity.liveness)."""
    place = Place(tmp_path)
    (tmp_path / "held.py").write_text(HELD)
    signal_file = tmp_path / "started"
    pipeline = f"PIPELINE={tmp_path / 'held.py'}"
    params = json.dumps({"signal": str(signal_file), "hold": 600})
    env = {"DAGSTER_HOME": str(place.home), "ETL_STAGING_ROOT": str(place.staging)}
    with started_make(tmp_path / "logs", "dagster", pipeline, f"PARAMS={params}",
                      f"OUTPUT_DIR={tmp_path / 'killed'}", env=env) as killed:  # fmt: skip
        wait_until(signal_file.exists, killed, "the first step", 300)
        killed.kill_group()
    [killed_run] = [run for run, status in place.run_statuses().items() if status in UNFINISHED]

    params = json.dumps({"signal": str(signal_file)})
    again = make("dagster", pipeline, f"PARAMS={params}", f"OUTPUT_DIR={tmp_path / 'next'}",
                 env=env)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    statuses = place.run_statuses()
    assert statuses.pop(killed_run) == "FAILURE", "the killed run is still shown as running"
    assert set(statuses.values()) == {"SUCCESS"}
