"""The events pipeline as Dagster assets: each op calls one shared_etl step, nothing more.

    python dagster/definitions.py --input-path IN --output-path OUT [--date YYYY-MM-DD]
    python dagster/definitions.py --input-path IN --start D1 --end D2 --output-dir DIR

Why assets: a Dagster user models "the metrics of a day" as a daily-partitioned asset and a
backfill as materializing its partitions; that is the idiom this pipeline's backfill needs.
`metrics` is one run's output (all dates, or the `date` in its config); `daily_metrics` is
partitioned by day with a single-run backfill policy, so one run prepares the input once and
writes every date of the range. Each is a graph-backed asset of two ops, `prepare` (the whole
file, validated and de-duplicated once) and `aggregate` / `aggregate_each_day`: the prepared
handle names staged files that live only as long as their run, so it is a step's output
within the run, never an asset a later run (or a daemon's backfill run) could load.
Parameters are typed `Config` classes (defaults live there: a job-level default is dropped
as soon as any run config is given); retries are `RetryPolicy` and the attempt handed to
shared_etl is Dagster's own `retry_number + 1`. Runs execute in process, without a daemon:
the multiprocess executor re-imports Dagster for every step and is several times slower for
a job this size. The run log goes to stdout; a failure ends with one line on stderr.

Runs side by side (contract §9): every step of a run executes in the one process of that run
(`in_process_executor`, also in a run worker started by a run launcher), so the prepared
handle stays in that process's memory (`mem_io_manager`) instead of a file keyed only by
the asset that every run shares; the staged files live in a staging area the `staging`
resource holds for the run's lifetime, removed when the run ends or, if its process is
killed, by a later run. The instance is created under a lock, so first runs side by side
do not race in its schema migrations, and runs whose driving process has died are marked
failed in Dagster's run storage by the next run.
"""

import fcntl
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Dagster's settings (dagster_env.py) come first. Dagster loads this file without its folder on
# the path (`dagster ... -f`, the deployed code server): it is added, after what is installed.
sys.path.append(str(Path(__file__).parent))
from dagster_env import STATE  # isort: split

from console_log import run_config, stdout_console
from run_resources import run_variables

import dagster as dg
import shared_etl
import shared_etl.errors as shared_etl_errors
from parity import console
from shared_etl.cli import run_command
from shared_etl.errors import MachineFaultError

# BackfillPolicy is marked beta in 1.13; the single-run backfill is the documented idiom.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

RETRY = dg.RetryPolicy(max_retries=2, delay=1)
DAYS = dg.DailyPartitionsDefinition(start_date="2000-01-01", end_offset=3650)


class MetricsRun(dg.Config):
    """One run: all dates of the input, or only `date`."""

    input_path: str = "data/synthetic_events.csv"
    output_path: str = "output/dagster_output.parquet"
    date: str | None = None


class DailyMetricsRun(dg.Config):
    """A backfill: the dates are the run's partition keys."""

    input_path: str = "data/synthetic_events.csv"
    output_dir: str = "output/backfill/dagster"


class PrepareConfig(dg.Config):
    input_path: str


class AggregateConfig(dg.Config):
    output_path: str
    date: str | None = None


class AggregateEachDayConfig(dg.Config):
    output_dir: str


def _orchestrator(context: dg.OpExecutionContext) -> dict[str, str]:
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


@dg.resource
def staging_area(context: dg.InitResourceContext) -> Iterator[str]:
    """A staging area held by the process that executes the run, for as long as it does.

    Inside the command's own area in local mode; in deployed mode in the worker process the
    run launcher started, where no command of ours holds one. The in-process executor builds
    it once per run, so both steps of the run see the same folder.
    """
    with shared_etl.staging_area(f"dagster-{context.run.run_id}") as area:
        yield area


@dg.op(retry_policy=RETRY)
def prepare(context: dg.OpExecutionContext, config: PrepareConfig, staging: dg.ResourceParam[str]
            ) -> dict:  # fmt: skip
    with _retry_only_what_may_pass():
        prepared = shared_etl.prepare(config.input_path, staging, attempt=context.retry_number + 1)
    context.log.info(
        f"{prepared.records_read} records read: {prepared.kept} kept, "
        f"{prepared.rejected} rejected, {prepared.duplicates} duplicates"
    )
    return prepared.to_dict()


@dg.op(retry_policy=RETRY, required_resource_keys={"run_variables"})
def aggregate(context: dg.OpExecutionContext, config: AggregateConfig, prepared: dict) -> dict:
    return _aggregate(context, prepared, [(config.output_path, config.date)])


@dg.op(retry_policy=RETRY, required_resource_keys={"run_variables"})
def aggregate_each_day(
    context: dg.OpExecutionContext, config: AggregateEachDayConfig, prepared: dict
) -> dict:
    """One file set per partition (day) of the run: a single-run backfill prepares once."""
    days = context.partition_keys
    return _aggregate(context, prepared, [(os.path.join(config.output_dir, f"{day}.parquet"), day)
                                          for day in days])  # fmt: skip


def _aggregate(
    context: dg.OpExecutionContext, prepared: dict, jobs: list[tuple[str, str | None]]
) -> dict[str, int]:
    handle = shared_etl.PreparedRun.from_dict(prepared)
    written = {}
    for output_path, day in jobs:
        with _retry_only_what_may_pass():
            result = shared_etl.aggregate(
                handle, output_path, date=day, attempt=context.retry_number + 1,
                orchestrator=_orchestrator(context),
            )  # fmt: skip
        context.log.info(f"wrote {output_path}: {result.metric_rows} metric rows")
        written[output_path] = result.metric_rows
    context.add_output_metadata({"metric_rows": written})
    return written


@dg.config_mapping
def _metrics_run(run: MetricsRun) -> dict:
    return {
        "prepare": {"config": {"input_path": run.input_path}},
        "aggregate": {"config": {"output_path": run.output_path, "date": run.date}},
    }


@dg.config_mapping
def _daily_metrics_run(run: DailyMetricsRun) -> dict:
    return {
        "prepare": {"config": {"input_path": run.input_path}},
        "aggregate_each_day": {"config": {"output_dir": run.output_dir}},
    }


# Prepare and aggregate are the two steps of one asset, not two assets: the prepared handle
# names staged files that live only as long as their run, so no later run may load it.
@dg.graph_asset(config=_metrics_run)
def metrics() -> dict:
    return aggregate(prepare())


@dg.graph_asset(
    config=_daily_metrics_run, partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run()
)
def daily_metrics() -> dict:
    return aggregate_each_day(prepare())


ONE_RUN = dg.define_asset_job("events_metrics", selection=[metrics])
BACKFILL = dg.define_asset_job("events_daily_metrics", selection=[daily_metrics])

# One run, one process: the handle between the steps never leaves it (see the docstring).
defs = dg.Definitions(
    assets=[metrics, daily_metrics],
    jobs=[ONE_RUN, BACKFILL],
    resources={
        "io_manager": dg.mem_io_manager,
        "staging": staging_area,
        "run_variables": run_variables,
    },
    executor=dg.in_process_executor,
    loggers={"console": stdout_console},
)

# Tag of a run driven from this process: a later run marks it failed once this process is gone.
DRIVER_TAG = "etl/driver"


def _instance() -> dg.DagsterInstance:
    """The project's instance: $DAGSTER_HOME with telemetry off (dagster.yaml beside this file).

    Created under an exclusive lock: the first DagsterInstance.get() on a fresh home creates
    the SQLite databases and stamps their schema revision, which two processes must not do at
    once (one fails; the revision table can end with two heads). Later runs take the lock only
    for that instant.
    """
    home = Path(os.environ["DAGSTER_HOME"])
    with MachineFaultError.on_os_error(str(home), "create the Dagster instance"):
        home.mkdir(parents=True, exist_ok=True)
        with open(home / ".instance.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (home / "dagster.yaml").exists():
                shutil.copyfile(Path(__file__).with_name("dagster.yaml"), home / "dagster.yaml")
            instance = dg.DagsterInstance.get()
    _fail_runs_of_dead_drivers(instance)
    return instance


def _process_identity(pid: int) -> str | None:
    """Boot, pid and start time of a live process: unique across pid reuse and reboots. A
    killed process whose parent has not reaped it yet (a zombie) is not live."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    state, started = fields[0], fields[19]
    return None if state == "Z" else f"{boot}:{pid}:{started}"


def _fail_runs_of_dead_drivers(instance: dg.DagsterInstance) -> None:
    """Mark failed the runs left in progress by a driver that was killed (SIGKILL, a crash):
    in local mode nothing else would, and they would show as running in the UI for ever."""
    unfinished = dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                  dg.DagsterRunStatus.STARTED],
    )  # fmt: skip
    for run in instance.get_runs(filters=unfinished):
        driver = run.tags.get(DRIVER_TAG)
        if driver and _process_identity(int(driver.split(":")[1])) != driver:
            instance.report_run_failed(run, message=f"its process ({driver}) is gone")


def run_one(input_path: str, output_path: str, date: str | None) -> None:
    shared_etl.check_output_path(output_path)
    shared_etl.parse_date(date)
    config = {"input_path": input_path, "output_path": output_path, "date": date}
    _execute(ONE_RUN.name, {"metrics": {"config": config}})


def run_backfill(input_path: str, start: str, end: str, output_dir: str) -> None:
    shared_etl.dates_between(start, end)
    shared_etl.check_output_dir(output_dir)
    _execute(
        BACKFILL.name,
        {"daily_metrics": {"config": {"input_path": input_path, "output_dir": output_dir}}},
        tags={"dagster/asset_partition_range_start": start,
              "dagster/asset_partition_range_end": end},
    )  # fmt: skip


def _execute(job_name: str, ops: dict, tags: dict | None = None) -> None:
    """Run a job of `defs` in this process, tagged with this process for the dead-run sweep."""
    driver = {DRIVER_TAG: identity} if (identity := _process_identity(os.getpid())) else {}
    log = console.log_file(STATE, "dagster")
    result = defs.resolve_job_def(job_name).execute_in_process(
        run_config=run_config(ops, log), instance=_instance(), tags={**(tags or {}), **driver},
        raise_on_error=False,
    )  # fmt: skip
    if not result.success:
        print(console.full_log_line(log), flush=True)
        raise _pipeline_error(result)


def _pipeline_error(result: dg.ExecuteInProcessResult) -> shared_etl.PipelineError:
    return pipeline_error(result.run_id, result.all_events)


def pipeline_error(run_id: str, events: list[dg.DagsterEvent]) -> shared_etl.PipelineError:
    """The error behind a failed run, from Dagster's record of the failure: the shared_etl error
    raised in it (its message and exit code), else where it failed and the error's last line."""
    failures = [event for event in events if not event.is_step_up_for_retry]
    failures.sort(key=lambda event: not event.is_step_failure)  # the failed step's own first
    errors = [
        (event.step_key or event.event_type_value, event.event_specific_data.error)
        for event in failures
        if getattr(event.event_specific_data, "error", None) is not None
    ]
    for _, info in errors:
        while info is not None:
            kind = getattr(shared_etl_errors, info.cls_name or "", None)
            if isinstance(kind, type) and issubclass(kind, shared_etl.PipelineError):
                error = shared_etl.PipelineError(info.message.split(": ", 1)[-1].strip())
                error.exit_code = kind.exit_code
                return error
            info = info.cause
    if errors:
        where, info = errors[0]
        cause = info.message.strip().splitlines()[-1]
        return shared_etl.PipelineError(f"dagster run {run_id} failed at {where}: {cause}")
    return shared_etl.PipelineError(f"dagster run {run_id} failed: see its log")


if __name__ == "__main__":
    sys.exit(run_command("python dagster/definitions.py", __doc__, run_one, run_backfill))
