"""The reference runner for any pipeline: each step once, in order, in this process. It is the
ground truth the orchestrators are compared with, not an orchestrator: no retries.

A backfill runs the steps that do not depend on the date once, and the others once per date,
as the adapters do: a date's outputs go to `<output_dir>/<date>/`.
"""

import datetime as dt
import os
from collections.abc import Mapping, Sequence

from parity import layout
from parity.declaration import Pipeline
from parity.execution import publish_run, run_step, step_failure
from parity.results import Handle
from parity.staging import run_folder

WRAPPER = {"name": "reference"}


def run(pipeline: Pipeline, values: Mapping[str, object], output_dir: str) -> dict[str, str]:
    """One run into `output_dir` (checked writable by parity.cli); the sha256 by output."""
    staging = run_folder("reference")
    handles = _run_steps(pipeline, pipeline.order, values, {}, staging)
    return publish_run(pipeline, values, handles, output_dir, WRAPPER)


def backfill(
    pipeline: Pipeline, values: Mapping[str, object], dates: Sequence[dt.date], output_dir: str
) -> dict[str, dict[str, str]]:
    """One run per date into `<output_dir>/<date>/` (parity.layout), sharing what no date
    changes."""
    folders = {day: layout.for_date(output_dir, day) for day in dates}
    shared = [name for name in pipeline.order if not pipeline.depends_on_partition(name)]
    dated = [name for name in pipeline.order if pipeline.depends_on_partition(name)]
    staging = run_folder("reference")
    common = _run_steps(pipeline, shared, values, {}, staging)
    written = {}
    for day, folder in folders.items():
        day_values = {**values, pipeline.partition: day}
        handles = _run_steps(
            pipeline, dated, day_values, common, os.path.join(staging, day.isoformat())
        )
        written[day.isoformat()] = publish_run(pipeline, day_values, handles, folder, WRAPPER)
    return written


def _run_steps(
    pipeline: Pipeline,
    names: Sequence[str],
    values: Mapping[str, object],
    done: Mapping[str, Handle],
    staging: str,
) -> dict[str, Handle]:
    handles = dict(done)
    for name in names:
        try:
            handles[name] = run_step(pipeline, name, values, handles, staging)
        except Exception as exc:
            raise step_failure(name, exc) from exc
    return handles
