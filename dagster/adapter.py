"""Any declared pipeline (parity.Pipeline) as Dagster's own definitions, run in local mode.

    python dagster/adapter.py run PIPELINE [--params JSON] [--date YYYY-MM-DD] --output-dir DIR
    python dagster/adapter.py backfill PIPELINE [--params JSON] --start D1 --end D2 --output-dir DIR
    python dagster/adapter.py --input-path IN --output-path OUT [--date D]    # the events pipeline
    PIPELINE=path/to/p.py dagster dev -f dagster/adapter.py     # its job and assets in the UI

The definitions are a job (pipeline_job.py: an op per step, then `publish`) and the same
declaration as assets (pipeline_assets.py), on the same ops and resources. A run executes in
this process (local_runs.py). A backfill is one run of the date-independent steps, then one
partition run per date of the others (an op selection whose missing inputs the `handles` IO
manager takes from the first run), as parity/reference.py does.
"""

import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# Dagster's settings (dagster_env.py) come first; this folder first on the path, for them and
# the modules beside it, however this file is loaded (`python`, `dagster dev -f`, a test).
sys.path.insert(0, str(Path(__file__).parent))
import dagster_env  # isort: split

from console_log import stdout_console
from local_runs import execute
from pipeline_assets import build_assets
from pipeline_job import Values, build_job, ops, resources

import dagster as dg
from parity import Pipeline
from parity.cli import run_command
from parity.layout import for_date


def build_definitions(pipeline: Pipeline) -> dg.Definitions:
    """The job and the assets, on the same ops and resources; a materialization of the assets
    runs in its process (in-process executor), as the job does: the handles stay in memory."""
    step_ops, bound = ops(pipeline), resources(pipeline)
    return dg.Definitions(
        assets=[build_assets(pipeline, step_ops, bound)],
        jobs=[build_job(pipeline, step_ops, bound)],
        executor=dg.in_process_executor, loggers={"console": stdout_console},
    )  # fmt: skip


def run_one(pipeline: Pipeline, values: Values, output_dir: str) -> None:
    day = values.get(pipeline.partition) if pipeline.partition else None
    result = execute(build_job(pipeline), values, output_dir, day=day)
    print(f"dagster: {pipeline.name}: run {result.run_id} wrote {output_dir}")


def run_backfill(pipeline: Pipeline, values: Values, dates: Sequence[dt.date],
                 output_dir: str) -> None:  # fmt: skip
    job = build_job(pipeline)
    shared = [name for name in pipeline.order if not pipeline.depends_on_partition(name)]
    dated = [name for name in pipeline.order if name not in shared]
    earlier = {}
    if shared:
        result = execute(job, values, None, names=shared, keep=True)
        earlier = {name: result.output_for_node(name) for name in shared}
    for day in dates:
        folder = for_date(output_dir, day)
        result = execute(job, {**values, pipeline.partition: day}, folder,
                         names=[*dated, "publish"], day=day, earlier=earlier)  # fmt: skip
        print(f"dagster: {pipeline.name}: {day}: run {result.run_id} wrote {folder}")


if __name__ == "__main__":
    sys.exit(run_command("python dagster/adapter.py", __doc__, run_one, run_backfill))
elif os.environ.get("PIPELINE"):  # loaded by `dagster dev -f` or a code server
    from parity.loader import load

    defs = build_definitions(load(os.environ["PIPELINE"])[0])
