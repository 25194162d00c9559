"""Any declared pipeline (parity.Pipeline) as Dagster's own definitions, run in local mode.

    python dagster/adapter.py run PIPELINE [--params JSON] [--date YYYY-MM-DD] --output-dir DIR
    python dagster/adapter.py backfill PIPELINE [--params JSON] --start D1 --end D2 --output-dir DIR
    PIPELINE=path/to/p.py dagster dev -f dagster/adapter.py     # its job and assets in the UI

Why this shape: one op per step, so Dagster's graph, retries and event log speak of the user's
steps; the run parameters are one Config resource generated from the declaration, so the
launchpad shows their types and defaults; only small handles pass between ops (results are
staged files). A partitioned pipeline's job is daily-partitioned, and a backfill is one run of
the date-independent steps, then one partition run per date of the others (an op selection
whose missing inputs the `handles` IO manager takes from the first run), as parity/reference.py
does. Runs execute in this process on $DAGSTER_HOME (.state/dagster); Dagster's log goes to
stdout, so that stderr holds only the one line of a failure.

Beside the job, the same declaration as assets (`build_assets`): one asset per declared
Output, keyed `<pipeline>/<step>[/<part>]`, materialized by a graph of the job's own step ops
and a `publish_assets` op that publishes every output with the one recipe (publish_run).
Assets are the published files, not the steps: a step's result is staged only for as long as
its run, so an asset a later run could load must be what outlives the run. The assets'
dependencies are those of the published steps, through any step that publishes nothing, and
they are materialized together, never a subset, because a run publishes all its outputs
with one manifest, as the job does.
"""

import datetime as dt
import fcntl
import os
import shutil
import sys
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import redirect_stderr
from functools import partial
from pathlib import Path

# Dagster's settings (dagster_env.py) come first; this folder first on the path, for them and
# the modules beside it, however this file is loaded (`python`, `dagster dev -f`, a test).
sys.path.insert(0, str(Path(__file__).parent))
from dagster_env import STATE  # isort: split

import pydantic
from console_log import run_config as log_config
from console_log import stdout_console
from run_resources import command_staging, handles_manager, run_variables, staging

import dagster as dg
from parity import Output, Pipeline, PipelineError, UsageError, console, is_retryable, liveness
from parity.binding import from_json, to_json
from parity.cli import run_command
from parity.errors import MachineFaultError
from parity.execution import publish_run, run_step, step_failure
from parity.layout import for_date, output_paths

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
        out: Mapping[str, dg.Out] | None = None, **options: object) -> dg.OpDefinition:  # fmt: skip
    """An op whose inputs and output (unless `out` says otherwise) are handles, and whose
    failure is the step's one line and exit code in Dagster's record, retried by its
    RetryPolicy only if a retry may pass."""

    def body(context: dg.OpExecutionContext, **handles: dict):  # no return type: Dagster reads it
        try:
            return call(context, _values(pipeline, context), handles)
        except Exception as exc:
            error = step_failure(name, exc)
            raise dg.Failure(str(error), metadata={"exit_code": error.exit_code},
                             allow_retries=is_retryable(exc)) from exc  # fmt: skip

    ins = {input_name: dg.In(dict, input_manager_key="handles") for input_name in inputs}
    out = out or dg.Out(dict, io_manager_key="handles")
    return dg.op(name=name, ins=ins, out=out, **options)(body)


def _step_op(pipeline: Pipeline, name: str) -> dg.OpDefinition:
    declared = pipeline.steps[name]
    return _op(pipeline, name, pipeline.dependencies[name],
               lambda context, values, handles: run_step(
                   pipeline, name, values, handles, context.resources.staging,
                   attempt=context.retry_number + 1),
               required_resource_keys={"params", "staging", "run_variables"},
               retry_policy=dg.RetryPolicy(max_retries=declared.retries,
                                           delay=declared.retry_delay_seconds))  # fmt: skip


def _publish(pipeline: Pipeline, context: dg.OpExecutionContext, values: Values,
             handles: Mapping[str, dict]) -> dict[str, str]:  # fmt: skip
    return publish_run(pipeline, values, handles, context.op_config["output_dir"],
                       {"name": "dagster", "version": dg.__version__, "run_id": context.run_id})


def _publish_op(pipeline: Pipeline) -> dg.OpDefinition:
    return _op(pipeline, "publish", pipeline.order, partial(_publish, pipeline),
               config_schema={"output_dir": str}, required_resource_keys={"params"})  # fmt: skip


def _publish_assets_op(pipeline: Pipeline) -> dg.OpDefinition:
    """`publish` with an output per declared Output, each the materialization of its asset:
    the published file's path and sha256 (the files themselves are publish_run's), kept by
    the assets' `io_manager`, in memory: nothing loads them, each run publishes its own."""

    def call(context: dg.OpExecutionContext, values: Values, handles: Mapping) -> tuple:
        digests = _publish(pipeline, context, values, handles)
        paths, published = output_paths(pipeline, context.op_config["output_dir"]), []
        for output in pipeline.outputs:
            path = paths[output.name]
            found = {"path": path, "sha256": digests[output.name]}
            published.append(dg.Output(found, _out_name(output), metadata={
                "path": dg.MetadataValue.path(path), "sha256": found["sha256"]}))  # fmt: skip
        return tuple(published)

    return _op(pipeline, "publish_assets", pipeline.order, call,
               out={_out_name(output): dg.Out(dict) for output in pipeline.outputs},
               config_schema={"output_dir": str}, required_resource_keys={"params"})  # fmt: skip


def _ops(pipeline: Pipeline) -> dict[str, dg.OpDefinition]:
    """An op per step, named by it, shared by the job and the assets: one repository holds one
    definition of a name."""
    reserved = (f"{pipeline.name}_job", f"{pipeline.name}_assets", "publish", "publish_assets")
    if set(reserved) & set(pipeline.steps):
        raise UsageError(f"pipeline {pipeline.name!r}: Dagster reserves the step names "
                         f"{', '.join(reserved)}")  # fmt: skip
    if len({_out_name(output) for output in pipeline.outputs}) < len(pipeline.outputs):
        raise UsageError(f"pipeline {pipeline.name!r}: outputs 'a.b' and 'a__b' are one name "
                         "in Dagster; rename one")  # fmt: skip
    return {name: _step_op(pipeline, name) for name in pipeline.order}


def _steps(pipeline: Pipeline, ops: Mapping[str, dg.OpDefinition]) -> dict[str, object]:
    """The step ops called in order, each on its dependencies' results (a graph's body)."""
    results = {}
    for name in pipeline.order:
        results[name] = ops[name](**{dep: results[dep] for dep in pipeline.dependencies[name]})
    return results


def _resources(pipeline: Pipeline) -> dict[str, object]:
    return {"params": parameters_config(pipeline).configure_at_launch(), "staging": staging,
            "handles": handles_manager({}), "run_variables": run_variables}  # fmt: skip


def build_job(pipeline: Pipeline, ops: Mapping[str, dg.OpDefinition] | None = None,
              resources: Mapping[str, object] | None = None) -> dg.JobDefinition:  # fmt: skip
    """The pipeline as a Dagster job `<name>_job` (a job may not share an op's name): an op
    per step, edges from its dependencies, then `publish`."""
    ops = ops or _ops(pipeline)
    publish = _publish_op(pipeline)

    def graph() -> None:
        publish(**_steps(pipeline, ops))

    return dg.job(
        name=f"{pipeline.name}_job", partitions_def=DAYS if pipeline.partition else None,
        executor_def=dg.in_process_executor, logger_defs={"console": stdout_console},
        resource_defs=dict(resources or _resources(pipeline)),
    )(graph)  # fmt: skip


def asset_key(pipeline: Pipeline, output: Output) -> dg.AssetKey:
    """`<pipeline>/<step>[/<part>]`: the pipeline's name first, as two pipelines in one
    workspace (the deployed `pipelines` location) may publish an output of one name."""
    return dg.AssetKey([pipeline.name, *output.name.split(".")])


def _out_name(output: Output) -> str:
    return output.name.replace(".", "__")


def asset_deps(pipeline: Pipeline) -> dict[Output, set[dg.AssetKey]]:
    """Each output's upstream outputs: those of the nearest published steps it reads, directly
    or through steps that publish nothing."""
    published = {}
    for output in pipeline.outputs:
        published.setdefault(output.step, []).append(asset_key(pipeline, output))

    def upstream(step_name: str) -> set[dg.AssetKey]:
        found = set()
        for dependency in pipeline.dependencies[step_name]:
            found |= set(published.get(dependency, ())) or upstream(dependency)
        return found

    return {output: upstream(output.step) for output in pipeline.outputs}


def build_assets(pipeline: Pipeline, ops: Mapping[str, dg.OpDefinition] | None = None,
                 resources: Mapping[str, object] | None = None) -> dg.AssetsDefinition:  # fmt: skip
    """The declared outputs as assets (see the module's docstring), partitioned by day as the
    job is, the parameters the same Config resource."""
    ops = ops or _ops(pipeline)
    publish = _publish_assets_op(pipeline)
    outs = [_out_name(output) for output in pipeline.outputs]

    def graph() -> dict[str, object]:
        published = publish(**_steps(pipeline, ops))
        return dict(zip(outs, published if len(outs) > 1 else [published], strict=True))

    assets = dg.AssetsDefinition.from_graph(
        dg.graph(name=f"{pipeline.name}_assets", out={out: dg.GraphOut() for out in outs})(graph),
        keys_by_output_name={_out_name(output): asset_key(pipeline, output)
                             for output in pipeline.outputs},
        internal_asset_deps={_out_name(output): deps
                             for output, deps in asset_deps(pipeline).items()},
        partitions_def=DAYS if pipeline.partition else None,
    )  # fmt: skip
    bound = {**(resources or _resources(pipeline)), "io_manager": dg.mem_io_manager}
    return dg.with_resources([assets], bound)[0]


def build_definitions(pipeline: Pipeline) -> dg.Definitions:
    """The job and the assets, on the same ops and resources; a materialization of the assets
    runs in its process (in-process executor), as the job does: the handles stay in memory."""
    ops, resources = _ops(pipeline), _resources(pipeline)
    return dg.Definitions(
        assets=[build_assets(pipeline, ops, resources)], jobs=[build_job(pipeline, ops, resources)],
        executor=dg.in_process_executor, loggers={"console": stdout_console},
    )  # fmt: skip


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
             earlier: Mapping[str, dict] | None = None,
             keep: bool = False) -> dg.ExecuteInProcessResult:  # fmt: skip
    """One run of `job` in this process: staged inside the command's area, kept after the run
    only if `keep` (a backfill's shared run)."""
    if day is not None and not DAYS.has_partition_key(day.isoformat()):
        raise UsageError(f"date {day}: outside Dagster's daily partitions (from 2000-01-01)")
    ops = {"publish": {"config": {"output_dir": output_dir}}} if output_dir else {}
    log = console.log_file(STATE, "dagster")
    instance, run_id = _instance(), str(uuid.uuid4())  # Dagster's own form of a run id
    running = Path(instance.root_directory) / "running"  # the runs' liveness (parity.liveness)
    liveness.close_dead(running, partial(_fail_killed_run, instance))
    # Dagster's console log: stdout, like the other wrappers
    with redirect_stderr(sys.stdout), liveness.held(running, run_id):
        result = job.execute_in_process(
            run_config={**log_config(ops, log),
                        "resources": {"params": {"config": to_json(values)}}},
            instance=instance, run_id=run_id, partition_key=day and day.isoformat(),
            op_selection=names,
            resources={"staging": command_staging(keep),
                       **({"handles": handles_manager(earlier)} if earlier else {})},
            raise_on_error=False)  # fmt: skip
    if not result.success:
        print(console.full_log_line(log), flush=True)
        raise pipeline_error(result.run_id, result.all_events)
    return result


def _fail_killed_run(instance: dg.DagsterInstance, run_id: str) -> None:
    """A run whose process was killed: Dagster would show it STARTED for ever."""
    run = instance.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        instance.report_run_failed(run, "its process was killed; found by a later run")


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
        result = _execute(job, values, None, names=shared, keep=True)
        earlier = {name: result.output_for_node(name) for name in shared}
    for day in dates:
        folder = for_date(output_dir, day)
        result = _execute(job, {**values, pipeline.partition: day}, folder,
                          names=[*dated, "publish"], day=day, earlier=earlier)  # fmt: skip
        print(f"dagster: {pipeline.name}: {day}: run {result.run_id} wrote {folder}")


if __name__ == "__main__":
    sys.exit(run_command("python dagster/adapter.py", __doc__, run_one, run_backfill))
elif os.environ.get("PIPELINE"):  # loaded by `dagster dev -f` or a code server
    from parity.loader import load

    defs = build_definitions(load(os.environ["PIPELINE"])[0])
