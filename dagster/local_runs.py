"""A run of a job in this process (the local adapter): on the project's Dagster instance, staged
inside the command's area, its killed predecessors closed, its failure one line.

Runs execute in this process on $DAGSTER_HOME (.state/dagster); Dagster's log goes to stdout,
so that stderr holds only the one line of a failure, and in full to a log file. A run whose
command was killed would show STARTED for ever: its driver holds a lock while it runs
(parity.liveness), and the next run marks it failed.
"""

import datetime as dt
import fcntl
import os
import shutil
import sys
import uuid
from collections.abc import Mapping, Sequence
from contextlib import redirect_stderr
from functools import partial
from pathlib import Path

from console_log import run_config
from dagster_env import STATE
from pipeline_job import DAYS
from run_failures import pipeline_error
from run_resources import command_staging, handles_manager

import dagster as dg
from parity import UsageError, console, liveness
from parity.binding import to_json
from parity.errors import MachineFaultError


def instance() -> dg.DagsterInstance:
    """$DAGSTER_HOME with telemetry off (dagster.yaml beside this file), created under a lock:
    the first DagsterInstance.get() on a fresh home creates the SQLite databases and stamps
    their schema revision, which two first runs side by side must not do at once."""
    home = Path(os.environ["DAGSTER_HOME"])
    with MachineFaultError.on_os_error(str(home), "create the Dagster instance"):
        home.mkdir(parents=True, exist_ok=True)
        with open(home / ".instance.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (home / "dagster.yaml").exists():
                shutil.copyfile(Path(__file__).with_name("dagster.yaml"), home / "dagster.yaml")
            return dg.DagsterInstance.get()


def execute(job: dg.JobDefinition, values: Mapping[str, object], output_dir: str | None,
            names: Sequence[str] | None = None, day: dt.date | None = None,
            earlier: Mapping[str, dict] | None = None,
            keep: bool = False) -> dg.ExecuteInProcessResult:  # fmt: skip
    """One run of `job` (only the ops `names`, if given; the partition `day`), publishing into
    `output_dir` unless it is None; staged inside the command's area, kept after the run only
    if `keep` (a backfill's shared run); the inputs of steps not in it from `earlier`."""
    if day is not None and not DAYS.has_partition_key(day.isoformat()):
        raise UsageError(f"date {day}: outside Dagster's daily partitions (from 2000-01-01)")
    ops = {"publish": {"config": {"output_dir": output_dir}}} if output_dir else {}
    log = console.log_file(STATE, "dagster")
    home, run_id = instance(), str(uuid.uuid4())  # Dagster's own form of a run id
    running = Path(home.root_directory) / "running"  # the runs' liveness (parity.liveness)
    liveness.close_dead(running, partial(_fail_killed_run, home))
    # Dagster's console log: stdout, like the other wrappers
    with redirect_stderr(sys.stdout), liveness.held(running, run_id):
        result = job.execute_in_process(
            run_config={**run_config(ops, log),
                        "resources": {"params": {"config": to_json(values)}}},
            instance=home, run_id=run_id, partition_key=day and day.isoformat(),
            op_selection=names,
            resources={"staging": command_staging(keep),
                       **({"handles": handles_manager(earlier)} if earlier else {})},
            raise_on_error=False)  # fmt: skip
    if not result.success:
        print(console.full_log_line(log), flush=True)
        raise pipeline_error(result.run_id, result.all_events)
    return result


def _fail_killed_run(home: dg.DagsterInstance, run_id: str) -> None:
    """A run whose process was killed: Dagster would show it STARTED for ever."""
    run = home.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        home.report_run_failed(run, "its process was killed; found by a later run")
