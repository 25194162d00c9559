"""What the conformance suite knows of each wrapper: where it lives and where its
orchestrator keeps its own record of attempts. Everything else is driven through `make`."""

import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from parity import registry
from tests.conftest import PROJECT, carries_session_mark

STATE = PROJECT / ".state"


# The events pipeline's step that reads the date (shared_etl/pipeline.py), whose tries the
# orchestrators count: ETL_FAIL_ATTEMPTS makes it fail (parity.cli).
DATED_STEP = "metrics"


def _prefect_attempts(output: Path) -> int:
    """`run_count` of the metrics task run in the flow run whose publish task wrote `output`,
    in Prefect's own database."""
    with sqlite3.connect(STATE / "prefect" / "prefect.db") as db:
        rows = db.execute(
            "SELECT step.run_count FROM task_run publish JOIN task_run step"
            " ON step.flow_run_id = publish.flow_run_id WHERE publish.name = ?"
            " AND (step.name = ? OR step.name LIKE ?) ORDER BY publish.created DESC LIMIT 1",
            (f"publish {output}", DATED_STEP, f"{DATED_STEP} %"),
        ).fetchall()
    assert rows, f"Prefect recorded no {DATED_STEP} task run for {output}"
    return rows[0][0]


def _dagster_attempts(output: Path) -> int:
    """STEP_START plus STEP_RESTARTED of the metrics step, in Dagster's own event log of the
    newest run configured with `output`."""
    with sqlite3.connect(STATE / "dagster" / "history" / "runs.db") as db:
        rows = db.execute(
            "SELECT run_id FROM runs WHERE run_body LIKE ? ORDER BY id DESC LIMIT 1",
            (f'%"{output}"%',),
        ).fetchall()
    assert rows, f"Dagster recorded no run for {output}"
    with sqlite3.connect(STATE / "dagster" / "history" / "runs" / f"{rows[0][0]}.db") as db:
        (count,) = db.execute(
            "SELECT count(*) FROM event_logs WHERE step_key = ?"
            " AND dagster_event_type IN ('STEP_START', 'STEP_RESTARTED')", (DATED_STEP,)
        ).fetchone()
    return count


def _airflow_attempts(output: Path) -> int:
    """`try_number` of the metrics task instance of the newest DAG run whose conf names
    `output`, in Airflow's metadata database."""
    with sqlite3.connect(STATE / "airflow-pipelines" / "airflow.db") as db:
        rows = db.execute(
            "SELECT ti.try_number FROM task_instance ti JOIN dag_run dr"
            " ON ti.dag_id = dr.dag_id AND ti.run_id = dr.run_id"
            " WHERE ti.task_id = ? AND CAST(dr.conf AS TEXT) LIKE ?"
            " ORDER BY dr.id DESC LIMIT 1",
            (DATED_STEP, f'%"{output}"%'),
        ).fetchall()
    assert rows, f"Airflow recorded no {DATED_STEP} task instance for {output}"
    return rows[0][0]


@dataclass(frozen=True)
class Wrapper:
    name: str
    entry: Path  # the wrapper exists once this file does
    issue: int  # the issue that builds it
    retries: int | None  # the retries its metrics task is configured with
    # The orchestrator's own count of the metrics step's tries in the newest run for an output.
    recorded_attempts: Callable[[Path], int] | None
    state: Path | None  # where the orchestrator keeps its state

    @property
    def exists(self) -> bool:
        return self.entry.exists()


# What the suite knows of each wrapper of the registry, in the registry's order: a wrapper the
# registry lists and this table does not (or the reverse) fails at collection, by name.
_KNOWN = {
    "reference": Wrapper("reference", PROJECT / "parity" / "reference.py", 2, None, None, None),
    "prefect": Wrapper("prefect", PROJECT / "prefect" / "adapter.py", 3, 2, _prefect_attempts,
                       STATE / "prefect"),
    "airflow": Wrapper("airflow", PROJECT / "airflow" / "adapter.py", 4, 2, _airflow_attempts,
                       STATE / "airflow-pipelines"),
    "dagster": Wrapper("dagster", PROJECT / "dagster" / "adapter.py", 5, 2, _dagster_attempts,
                       STATE / "dagster"),
}  # fmt: skip
assert sorted(_KNOWN) == sorted(registry.WRAPPERS), (
    f"tests/conformance/wrappers.py knows {sorted(_KNOWN)}, the registry lists "
    f"{sorted(registry.WRAPPERS)} ({registry.REGISTRY})"
)
WRAPPERS = [_KNOWN[name] for name in registry.WRAPPERS]


def read_manifest(output: Path) -> dict:
    return json.loads(
        output.with_name(output.name.replace(".parquet", ".manifest.json")).read_text()
    )


def ancestors() -> set[str]:
    """This test process and its parents: pytest itself runs from an environment too."""
    found, pid = set(), os.getpid()
    while pid > 1:
        found.add(str(pid))
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def survivors(environment_name: str) -> list[str]:
    """Processes of this test session still running a program from an environment under
    .venvs/ (API servers, schedulers...), however it was named: `make` starts them by a
    relative path. Another session's processes (the deployed tier's, beside this one, and the
    stack it started) are not this session's leftovers."""
    environment = PROJECT / ".venvs" / environment_name
    mine = ancestors()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or proc.name in mine or not carries_session_mark(proc):
            continue
        try:
            arguments = (proc / "cmdline").read_bytes().decode().split("\0")
            programs = [Path(proc / "cwd").resolve() / argument for argument in arguments[:2]]
        except (OSError, ValueError):
            continue
        if any(program.is_relative_to(environment) for program in programs):
            found.append(f"{proc.name}: {' '.join(arguments)[:200]}")
    return found
