"""The events pipeline as Dagster assets: each asset calls one shared_etl step, nothing more.

    python dagster/definitions.py --input-path IN --output-path OUT [--date YYYY-MM-DD]
    python dagster/definitions.py --input-path IN --start D1 --end D2 --output-dir DIR

Why assets: a Dagster user models "the metrics of a day" as a daily-partitioned asset and a
backfill as materializing its partitions; that is the idiom this pipeline's backfill needs.
`prepared_events` is the unpartitioned upstream (the whole file, validated and
de-duplicated once); `metrics` is one run's output (all dates, or the `date` in its config);
`daily_metrics` is partitioned by day with a single-run backfill policy, so one run prepares
the input once and writes every date of the range. Parameters are typed `Config` classes
(defaults live there: a job-level default is dropped as soon as any run config is given);
retries are `RetryPolicy` and the attempt handed to shared_etl is Dagster's own
`retry_number + 1`. Runs execute in process, without a daemon: the multiprocess executor
re-imports Dagster for every step and is several times slower for a job this size.
"""

import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
STATE = PROJECT / ".state"
os.environ.setdefault("DAGSTER_HOME", str(STATE / "dagster"))
os.environ.setdefault("ETL_STAGING_ROOT", str(STATE / "staging"))

import dagster as dg  # noqa: E402
import shared_etl  # noqa: E402
import shared_etl.errors as shared_etl_errors  # noqa: E402
from shared_etl.cli import run_command  # noqa: E402

# BackfillPolicy is marked beta in 1.13; the single-run backfill is the documented idiom.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

RETRY = dg.RetryPolicy(max_retries=2, delay=1)
DAYS = dg.DailyPartitionsDefinition(start_date="2000-01-01", end_offset=3650)


class PrepareConfig(dg.Config):
    input_path: str = "data/synthetic_events.csv"


class MetricsConfig(dg.Config):
    output_path: str = "output/dagster_output.parquet"
    date: str | None = None


class DailyMetricsConfig(dg.Config):
    output_dir: str = "output/backfill/dagster"


def _orchestrator(context: dg.AssetExecutionContext) -> dict[str, str]:
    return {"name": "dagster", "version": dg.__version__, "run_id": context.run.run_id}


@contextmanager
def _retry_only_what_may_pass() -> Iterator[None]:
    """RetryPolicy retries every failure; a deterministic one (bad input) must not be."""
    try:
        yield
    except Exception as exc:
        if shared_etl.is_retryable(exc):
            raise
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


# A single-run policy here too: Dagster's CLI materializes a partition range with this upstream
# only when every selected asset has one (`dagster asset materialize --partition-range`).
@dg.asset(retry_policy=RETRY, backfill_policy=dg.BackfillPolicy.single_run())
def prepared_events(context: dg.AssetExecutionContext, config: PrepareConfig) -> dict:
    staging = shared_etl.new_staging_dir(f"dagster-{context.run.run_id}")
    with _retry_only_what_may_pass():
        prepared = shared_etl.prepare(config.input_path, staging, attempt=context.retry_number + 1)
    context.log.info(
        f"{prepared.records_read} records read: {prepared.kept} kept, "
        f"{prepared.rejected} rejected, {prepared.duplicates} duplicates"
    )
    return prepared.to_dict()


@dg.asset(retry_policy=RETRY)
def metrics(
    context: dg.AssetExecutionContext, config: MetricsConfig, prepared_events: dict
) -> dg.MaterializeResult:
    return _aggregate(context, prepared_events, [(config.output_path, config.date)])


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run(), retry_policy=RETRY)
def daily_metrics(
    context: dg.AssetExecutionContext, config: DailyMetricsConfig, prepared_events: dict
) -> dg.MaterializeResult:
    jobs = [
        (os.path.join(config.output_dir, f"{day}.parquet"), day) for day in context.partition_keys
    ]
    return _aggregate(context, prepared_events, jobs)


def _aggregate(
    context: dg.AssetExecutionContext, handle: dict, jobs: list[tuple[str, str | None]]
) -> dg.MaterializeResult:
    prepared = shared_etl.PreparedRun.from_dict(handle)
    written = {}
    for output_path, day in jobs:
        with _retry_only_what_may_pass():
            result = shared_etl.aggregate(
                prepared, output_path, date=day, attempt=context.retry_number + 1,
                orchestrator=_orchestrator(context),
            )  # fmt: skip
        context.log.info(f"wrote {output_path}: {result.metric_rows} metric rows")
        written[output_path] = result.metric_rows
    shared_etl.discard_staging(prepared.staging_dir)
    return dg.MaterializeResult(metadata={"metric_rows": written})


defs = dg.Definitions(assets=[prepared_events, metrics, daily_metrics])


def _instance() -> dg.DagsterInstance:
    """The project's instance: $DAGSTER_HOME with telemetry off (dagster.yaml beside this file)."""
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(Path(__file__).with_name("dagster.yaml"), home / "dagster.yaml")
    return dg.DagsterInstance.get()


def run_one(input_path: str, output_path: str, date: str | None) -> None:
    shared_etl.check_output_path(output_path)
    shared_etl.parse_date(date)
    _materialize(
        [prepared_events, metrics],
        {
            "prepared_events": {"config": {"input_path": input_path}},
            "metrics": {"config": {"output_path": output_path, "date": date}},
        },
    )


def run_backfill(input_path: str, start: str, end: str, output_dir: str) -> None:
    shared_etl.dates_between(start, end)
    _materialize(
        [prepared_events, daily_metrics],
        {
            "prepared_events": {"config": {"input_path": input_path}},
            "daily_metrics": {"config": {"output_dir": output_dir}},
        },
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
    )


def _materialize(assets: list, config: dict, tags: dict | None = None) -> None:
    result = dg.materialize(
        assets, run_config={"ops": config}, instance=_instance(), tags=tags, raise_on_error=False
    )
    if not result.success:
        raise _pipeline_error(result)


def _pipeline_error(result: dg.ExecuteInProcessResult) -> shared_etl.PipelineError:
    """The shared_etl error behind a failed step, from Dagster's record of the failure."""
    for event in result.all_events:
        info = event.step_failure_data.error if event.is_step_failure else None
        while info is not None:
            kind = getattr(shared_etl_errors, info.cls_name, None)
            if isinstance(kind, type) and issubclass(kind, shared_etl.PipelineError):
                error = shared_etl.PipelineError(info.message.split(": ", 1)[-1].strip())
                error.exit_code = kind.exit_code
                return error
            info = info.cause
    return shared_etl.PipelineError(f"dagster run {result.run_id} failed: see its log above")


if __name__ == "__main__":
    sys.exit(run_command("python dagster/definitions.py", __doc__, run_one, run_backfill))
