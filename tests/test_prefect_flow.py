"""What only the Prefect wrapper can get wrong (contract §9), for the events pipeline's flows as
prefect/adapter.py builds them from the declaration (shared_etl/pipeline.py): one task per
step and `publish`, the declared retries, the pipeline's parameters as the flows' own;
Prefect's temporary API server is a child of the flow's process and must not outlive it;
each run starts one, and two starting at once must not collide in the database; a run killed
with SIGKILL must not stay Running in Prefect's database."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest

from tests.conformance.runs import started_make, wait_until
from tests.conformance.test_declared_pipelines import HELD
from tests.conftest import PROJECT, SAMPLE, assert_same_parquet, make, run_reference

# "the next run marks the killed one": no other Prefect run of this checkout in between
pytestmark = [pytest.mark.orchestrators, pytest.mark.exclusive_state]

PYTHON = PROJECT / ".venvs" / "prefect" / "bin" / "python"
DEADLINE_SECONDS = 300

# The events pipeline's flows as the adapter builds them: names, and the parameters of each
# (its JSON schema's properties, and the required ones), as Prefect reads them.
_FLOWS = """
import json, sys
sys.path.insert(0, "prefect")
import adapter
from shared_etl.pipeline import pipeline
flows = dict(zip(("one", "backfill"), adapter.build(pipeline)))
print(json.dumps({n: [f.name, sorted(f.parameters.properties), sorted(f.parameters.required)]
                  for n, f in flows.items()}))
"""


def test_the_events_flows_take_the_pipelines_parameters_as_their_own():
    result = subprocess.run([str(PYTHON), "-c", _FLOWS], cwd=PROJECT, capture_output=True,
                            text=True, check=False, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "one": ["events_daily_metrics", ["date", "input_path", "output_dir"],
                ["input_path", "output_dir"]],
        "backfill": ["events_daily_metrics-backfill", ["end", "input_path", "output_dir", "start"],
                     ["end", "input_path", "output_dir", "start"]],
    }  # fmt: skip


def _task_runs(database: Path) -> dict[str, dict]:
    """Each task run's retry policy as Prefect recorded it, by task name, date or output off."""
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT name, empirical_policy FROM task_run").fetchall()
    return {name.split(" ")[0]: json.loads(policy) for name, policy in rows}


def _children(pid: int) -> list[tuple[int, str]]:
    """The live child processes of `pid`, with their command lines."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with suppress(OSError):
            stat = (proc / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append((int(proc.name), (proc / "cmdline").read_text().replace("\0", " ")))
    return found


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_api_server_dies_when_the_flow_process_is_killed_alone(tmp_path):
    flow = subprocess.Popen(
        [str(PYTHON), "prefect/adapter.py", "--input-path", str(SAMPLE),
         "--output-path", str(tmp_path / "events.parquet")],
        cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not (servers := [pid for pid, line in _children(flow.pid) if "uvicorn" in line]):
            assert flow.poll() is None, "the flow ended before its API server was seen"
            assert time.monotonic() < deadline, "no API server started"
            time.sleep(0.05)
        os.kill(flow.pid, signal.SIGKILL)
        flow.wait()
        deadline = time.monotonic() + 10
        while _alive(servers[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(servers[0]), "Prefect's API server outlived the flow's process"
    finally:
        with suppress(ProcessLookupError):
            os.killpg(flow.pid, signal.SIGKILL)
        flow.wait()


def test_two_first_runs_at_once_on_a_new_database_both_succeed_without_a_traceback(tmp_path):
    """Each run starts its own API server, which creates or migrates the database."""
    expected = tmp_path / "reference" / "events.parquet"
    reference = run_reference("--input-path", str(SAMPLE), "--output-path", str(expected))
    assert reference.returncode == 0, reference.stderr
    outputs = [tmp_path / f"run{number}" / "events.parquet" for number in (1, 2)]
    fresh = {"PREFECT_HOME": str(tmp_path / "prefect-home")}
    logs = tmp_path / "logs"
    with (
        started_make(logs, "prefect", f"OUTPUT={outputs[0]}", env=fresh) as first,
        started_make(logs, "prefect", f"OUTPUT={outputs[1]}", env=fresh) as second,
    ):
        results = [first.wait(), second.wait()]
    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr, result.stdout
    for output in outputs:
        assert_same_parquet(output, expected)
    # One task per declared step and `publish`, with the declared retries (two, one second
    # apart, for the steps that may fail for a passing reason: docs/front-door.md).
    policies = _task_runs(tmp_path / "prefect-home" / "prefect.db")
    assert sorted(policies) == ["metrics", "publish", "rejects", "validated"]
    retries = {name: (policy["retries"], policy["retry_delay"])
               for name, policy in policies.items()}  # fmt: skip
    assert retries == {"validated": (2, 1), "metrics": (2, 1), "rejects": (0, 0),
                       "publish": (1, 0)}, policies  # fmt: skip


def test_a_killed_run_is_set_crashed_by_the_next_run(tmp_path):
    """Prefect itself would show a flow run killed by SIGKILL as Running for ever."""
    source, staging = tmp_path / "events.csv", tmp_path / "staging"
    subprocess.run(
        [sys.executable, "-m", "shared_etl.generate", "--rows", "200000", "--seed", "3",
         "--output", str(source)],
        check=True, cwd=PROJECT, capture_output=True,
    )  # fmt: skip

    def run_folders() -> list[Path]:
        return [run for area in staging.glob("*") for run in area.glob("prefect-*")]

    with started_make(tmp_path / "logs", "prefect", f"INPUT={source}",
                      f"OUTPUT={tmp_path / 'killed.parquet'}",
                      f"ETL_STAGING_ROOT={staging}") as killed:  # fmt: skip
        wait_until(lambda: bool(run_folders()), killed, "the flow run", DEADLINE_SECONDS)
        flow_run_id = run_folders()[0].name.removeprefix("prefect-").rsplit("-", 1)[0]
        killed.kill_group()
    assert _flow_run_state(flow_run_id) == "RUNNING"

    result = make("prefect", f"OUTPUT={tmp_path / 'next.parquet'}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _flow_run_state(flow_run_id) == "CRASHED"


def _flow_run_state(flow_run_id: str) -> str:
    with sqlite3.connect(PROJECT / ".state" / "prefect" / "prefect.db") as db:
        (state,) = db.execute(
            "SELECT state_type FROM flow_run WHERE id = ?", (flow_run_id,)
        ).fetchone()
    return state


def test_a_killed_run_of_a_declared_pipeline_is_set_crashed_by_the_next_run(tmp_path):
    """The same for any pipeline, through the adapter (parity.liveness)."""
    (tmp_path / "held.py").write_text(HELD)
    signal_file, staging = tmp_path / "started", tmp_path / "staging"
    pipeline = f"PIPELINE={tmp_path / 'held.py'}"
    params = json.dumps({"signal": str(signal_file), "hold": 600})
    with started_make(tmp_path / "logs", "prefect", pipeline, f"PARAMS={params}",
                      f"OUTPUT_DIR={tmp_path / 'killed'}",
                      f"ETL_STAGING_ROOT={staging}") as killed:  # fmt: skip
        wait_until(signal_file.exists, killed, "the first step", DEADLINE_SECONDS)
        (run_folder,) = [run for area in staging.glob("*") for run in area.glob("prefect-*")]
        flow_run_id = run_folder.name.removeprefix("prefect-").rsplit("-", 1)[0]  # -<random>
        killed.kill_group()
    assert _flow_run_state(flow_run_id) == "RUNNING"

    params = json.dumps({"signal": str(signal_file)})
    result = make("prefect", pipeline, f"PARAMS={params}", f"OUTPUT_DIR={tmp_path / 'next'}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _flow_run_state(flow_run_id) == "CRASHED"
