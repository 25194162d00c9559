"""Any declared pipeline (parity.Pipeline) as Dagster's own definitions, run in local mode.

    python dagster/adapter.py run PIPELINE [--params JSON] [--date YYYY-MM-DD] --output-dir DIR
    python dagster/adapter.py backfill PIPELINE [--params JSON] --start D1 --end D2 --output-dir DIR
    PIPELINE=path/to/p.py dagster dev -f dagster/adapter.py     # the same job in Dagster's UI

Why this shape: one op per step, so Dagster's graph, retries and event log speak of the user's
steps; the run parameters are one Config resource generated from the declaration, so the
launchpad shows their types and defaults; only small handles pass between ops (results are
staged files). A partitioned pipeline's job is daily-partitioned, and a backfill is one run of
the date-independent steps, then one partition run per date of the others (an op selection
whose missing inputs the `handles` IO manager takes from the first run), as parity/reference.py
does. Runs execute in this process on $DAGSTER_HOME (.state/dagster); Dagster's log goes to
stdout, so that stderr holds only the one line of a failure.
"""

import datetime as dt
import fcntl
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import redirect_stderr
from pathlib import Path

# Dagster's settings (dagster_env.py) come first; this folder first on the path, for them and
# for definitions.py, however this file is loaded (`python`, `dagster dev -f`, a test's spec).
sys.path.insert(0, str(Path(__file__).parent))
from dagster_env import STATE  # isort: split

import pydantic
from definitions import run_config as log_config
from definitions import run_variables, stdout_console

import dagster as dg
from parity import Pipeline, PipelineError, UsageError, console, is_retryable
from parity.binding import from_json, to_json
from parity.cli import run_command
from parity.errors import MachineFaultError
from parity.execution import publish_run, run_step, step_failure
from parity.staging import run_folder

warnings.filterwarnings("ignore", category=dg.BetaWarning)
DAYS = dg.DailyPartitionsDefinition(start_date="2000-01-01", end_offset=3650)
Values = Mapping[str, object]


def parameters_config(pipeline: Pipeline) -> type[dg.ConfigurableResource]:
    """The run parameters as a typed Config. Dagster's config has no date type: a date is a
    string YYYY-MM-DD, as parity.binding.to_json writes it."""
    fields = {}
    for name, parameter in pipeline.parameters.items():
        kind = str if parameter.type is dt.date else parameter.type
        default = ... if parameter.required else to_json({name: parameter.default})[name]
        about = parameter.annotation + (", YYYY-MM-DD" if parameter.type is dt.date else "")
        fields[name] = (kind | None if parameter.optional else kind,
                        pydantic.Field(default, description=about))  # fmt: skip
    return pydantic.create_model(f"{pipeline.name}_parameters", __base__=dg.ConfigurableResource,
                                 **fields)  # fmt: skip


def _values(pipeline: Pipeline, context: dg.OpExecutionContext) -> dict[str, object]:
    values = from_json(pipeline, context.resources.params.model_dump())
    if pipeline.partition and context.has_partition_key:
        values[pipeline.partition] = dt.date.fromisoformat(context.partition_key)
    return values


def _op(pipeline: Pipeline, name: str, inputs: Sequence[str], call: Callable,
        **options: object) -> dg.OpDefinition:  # fmt: skip
    """An op whose inputs and output are handles, and whose failure is the step's one line and
    exit code in Dagster's record, retried by its RetryPolicy only if a retry may pass."""

    def body(context: dg.OpExecutionContext, **handles: dict) -> dict:
        try:
            return call(context, _values(pipeline, context), handles)
        except Exception as exc:
            error = step_failure(name, exc)
            raise dg.Failure(str(error), metadata={"exit_code": error.exit_code},
                             allow_retries=is_retryable(exc)) from exc  # fmt: skip

    ins = {input_name: dg.In(dict, input_manager_key="handles") for input_name in inputs}
    return dg.op(name=name, ins=ins, out=dg.Out(dict, io_manager_key="handles"), **options)(body)


def _step_op(pipeline: Pipeline, name: str) -> dg.OpDefinition:
    declared = pipeline.steps[name]
    return _op(pipeline, name, pipeline.dependencies[name],
               lambda context, values, handles: run_step(
                   pipeline, name, values, handles, context.resources.staging,
                   attempt=context.retry_number + 1),
               required_resource_keys={"params", "staging", "run_variables"},
               retry_policy=dg.RetryPolicy(max_retries=declared.retries,
                                           delay=declared.retry_delay_seconds))  # fmt: skip


def _publish_op(pipeline: Pipeline) -> dg.OpDefinition:
    return _op(pipeline, "publish", pipeline.order,
               lambda context, values, handles: publish_run(
                   pipeline, values, handles, context.op_config["output_dir"],
                   {"name": "dagster", "version": dg.__version__, "run_id": context.run_id}),
               config_schema={"output_dir": str}, required_resource_keys={"params"})  # fmt: skip


@dg.resource
def staging(context: dg.InitResourceContext) -> str:
    return run_folder(f"dagster-{context.run.run_id}")


class Handles(dg.IOManager):
    """The handles between a run's ops, in memory (one run, one process); an input whose step
    is not in the run (a backfill's date-independent steps) comes from `earlier`."""

    def __init__(self, earlier: Mapping[str, dict]) -> None:
        self.earlier, self.own = dict(earlier), {}

    def handle_output(self, context: dg.OutputContext, obj: dict) -> None:
        self.own[context.step_key] = obj

    def load_input(self, context: dg.InputContext) -> dict:
        if context.upstream_output is not None:
            return self.own[context.upstream_output.step_key]
        if context.name not in self.earlier:
            raise dg.Failure(f"step {context.name!r} ran in no earlier run", allow_retries=False)
        return self.earlier[context.name]


def handles_manager(earlier: Mapping[str, dict]) -> dg.IOManagerDefinition:
    return dg.IOManagerDefinition(lambda _: Handles(earlier))


def build_job(pipeline: Pipeline) -> dg.JobDefinition:
    """The pipeline as a Dagster job `<name>_job` (a job may not share an op's name): an op
    per step, edges from its dependencies, then `publish`."""
    if f"{pipeline.name}_job" in pipeline.steps or "publish" in pipeline.steps:
        raise UsageError(f"pipeline {pipeline.name!r}: Dagster reserves the step names "
                         f"{pipeline.name}_job and publish")  # fmt: skip
    ops = {name: _step_op(pipeline, name) for name in pipeline.order}
    publish = _publish_op(pipeline)

    def graph() -> None:
        results = {}
        for name in pipeline.order:
            results[name] = ops[name](**{dep: results[dep] for dep in pipeline.dependencies[name]})
        publish(**results)

    return dg.job(
        name=f"{pipeline.name}_job", partitions_def=DAYS if pipeline.partition else None,
        executor_def=dg.in_process_executor, logger_defs={"console": stdout_console},
        resource_defs={"params": parameters_config(pipeline).configure_at_launch(),
                       "staging": staging, "handles": handles_manager({}),
                       "run_variables": run_variables},
    )(graph)  # fmt: skip


def build_definitions(pipeline: Pipeline) -> dg.Definitions:
    return dg.Definitions(jobs=[build_job(pipeline)])


def _instance() -> dg.DagsterInstance:
    """$DAGSTER_HOME with telemetry off, made under a lock (first runs race in migrations)."""
    home = Path(os.environ["DAGSTER_HOME"])
    with MachineFaultError.on_os_error(str(home), "create the Dagster instance"):
        home.mkdir(parents=True, exist_ok=True)
        with open(home / ".instance.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (home / "dagster.yaml").exists():
                shutil.copyfile(Path(__file__).with_name("dagster.yaml"), home / "dagster.yaml")
            return dg.DagsterInstance.get()


def _execute(job: dg.JobDefinition, values: Values, output_dir: str | None,
             names: Sequence[str] | None = None, day: dt.date | None = None,
             earlier: Mapping[str, dict] | None = None) -> dg.ExecuteInProcessResult:  # fmt: skip
    if day is not None and not DAYS.has_partition_key(day.isoformat()):
        raise UsageError(f"date {day}: outside Dagster's daily partitions (from 2000-01-01)")
    ops = {"publish": {"config": {"output_dir": output_dir}}} if output_dir else {}
    log = console.log_file(STATE, "dagster")
    with redirect_stderr(sys.stdout):  # Dagster's console log: stdout, like the other wrappers
        result = job.execute_in_process(
            run_config={**log_config(ops, log),
                        "resources": {"params": {"config": to_json(values)}}},
            instance=_instance(), partition_key=day and day.isoformat(), op_selection=names,
            resources={"handles": handles_manager(earlier)} if earlier else None,
            raise_on_error=False)  # fmt: skip
    if not result.success:
        print(console.full_log_line(log), flush=True)
        raise pipeline_error(result.run_id, result.all_events)
    return result


def pipeline_error(run_id: str, events: Sequence[dg.DagsterEvent]) -> PipelineError:
    """The one line behind a failed run, from Dagster's record: the failed op's Failure."""
    failed = [event for event in events if event.is_step_failure]
    for event in failed:
        user = event.step_failure_data.user_failure_data
        if user is not None and user.description:
            error = PipelineError(user.description)
            code = user.metadata.get("exit_code")
            error.exit_code = code.value if code is not None else 1
            return error
    errors = [getattr(event.event_specific_data, "error", None) for event in failed or events]
    if found := [error for error in errors if error is not None]:
        cause = " ".join(found[0].message.split())
        return PipelineError(f"dagster run {run_id} failed: {cause}")
    return PipelineError(f"dagster run {run_id} failed: see its log")


def run_one(pipeline: Pipeline, values: Values, output_dir: str) -> None:
    day = values.get(pipeline.partition) if pipeline.partition else None
    result = _execute(build_job(pipeline), values, output_dir, day=day)
    print(f"dagster: {pipeline.name}: run {result.run_id} wrote {output_dir}")


def run_backfill(pipeline: Pipeline, values: Values, dates: Sequence[dt.date],
                 output_dir: str) -> None:  # fmt: skip
    job = build_job(pipeline)
    shared = [name for name in pipeline.order if not pipeline.depends_on_partition(name)]
    dated = [name for name in pipeline.order if name not in shared]
    earlier = {}
    if shared:
        result = _execute(job, values, None, names=shared)
        earlier = {name: result.output_for_node(name) for name in shared}
    for day in dates:
        folder = os.path.join(output_dir, day.isoformat())
        result = _execute(job, {**values, pipeline.partition: day}, folder,
                          names=[*dated, "publish"], day=day, earlier=earlier)  # fmt: skip
        print(f"dagster: {pipeline.name}: {day}: run {result.run_id} wrote {folder}")


if __name__ == "__main__":
    sys.exit(run_command("python dagster/adapter.py", __doc__, run_one, run_backfill))
elif os.environ.get("PIPELINE"):  # loaded by `dagster dev -f` or a code server
    from parity.loader import load

    defs = build_definitions(load(os.environ["PIPELINE"])[0])
