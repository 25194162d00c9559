"""A declared pipeline (parity.Pipeline) as a Dagster job: one op per step, then `publish`.

Why this shape: one op per step, so Dagster's graph, retries and event log speak of the user's
steps; the run parameters are one Config resource generated from the declaration, so the
launchpad shows their types and defaults; only small handles pass between ops (results are
staged files, run_resources.py). A partitioned pipeline's job is daily-partitioned.
"""

import datetime as dt
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import pydantic
from console_log import stdout_console
from run_failures import failure_of
from run_resources import handles_manager, run_variables, staging

import dagster as dg
from parity import Output, Pipeline, UsageError
from parity.binding import from_json, to_json
from parity.execution import publish_run, run_step

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


def op(pipeline: Pipeline, name: str, inputs: Sequence[str], call: Callable,
       out: Mapping[str, dg.Out] | None = None, **options: object) -> dg.OpDefinition:  # fmt: skip
    """An op whose inputs and output (unless `out` says otherwise) are handles, and whose
    failure is the step's one line and exit code in Dagster's record (run_failures.py)."""

    def body(context: dg.OpExecutionContext, **handles: dict):  # no return type: Dagster reads it
        try:
            return call(context, _values(pipeline, context), handles)
        except Exception as exc:
            raise failure_of(name, exc) from exc

    ins = {input_name: dg.In(dict, input_manager_key="handles") for input_name in inputs}
    out = out or dg.Out(dict, io_manager_key="handles")
    return dg.op(name=name, ins=ins, out=out, **options)(body)


def _step_op(pipeline: Pipeline, name: str) -> dg.OpDefinition:
    declared = pipeline.steps[name]
    return op(pipeline, name, pipeline.dependencies[name],
              lambda context, values, handles: run_step(
                  pipeline, name, values, handles, context.resources.staging,
                  attempt=context.retry_number + 1),
              required_resource_keys={"params", "staging", "run_variables"},
              retry_policy=dg.RetryPolicy(max_retries=declared.retries,
                                          delay=declared.retry_delay_seconds))  # fmt: skip


def publish(pipeline: Pipeline, context: dg.OpExecutionContext, values: Values,
            handles: Mapping[str, dict]) -> dict[str, str]:  # fmt: skip
    """Every output of the run, with its manifest, into the op's `output_dir`."""
    return publish_run(pipeline, values, handles, context.op_config["output_dir"],
                       {"name": "dagster", "version": dg.__version__, "run_id": context.run_id})


def out_name(output: Output) -> str:
    """A declared output's name as a Dagster output (no dots)."""
    return output.name.replace(".", "__")


def ops(pipeline: Pipeline) -> dict[str, dg.OpDefinition]:
    """An op per step, named by it, shared by the job and the assets: one repository holds one
    definition of a name, and one op's outputs one of each (pipeline_assets.py)."""
    reserved = (f"{pipeline.name}_job", f"{pipeline.name}_assets", "publish", "publish_assets")
    if set(reserved) & set(pipeline.steps):
        raise UsageError(f"pipeline {pipeline.name!r}: Dagster reserves the step names "
                         f"{', '.join(reserved)}")  # fmt: skip
    if len({out_name(output) for output in pipeline.outputs}) < len(pipeline.outputs):
        raise UsageError(f"pipeline {pipeline.name!r}: outputs 'a.b' and 'a__b' are one name "
                         "in Dagster; rename one")  # fmt: skip
    return {name: _step_op(pipeline, name) for name in pipeline.order}


def call_steps(pipeline: Pipeline, step_ops: Mapping[str, dg.OpDefinition]) -> dict[str, object]:
    """The step ops called in order, each on its dependencies' results (a graph's body)."""
    results = {}
    for name in pipeline.order:
        results[name] = step_ops[name](**{dep: results[dep] for dep in pipeline.dependencies[name]})
    return results


def resources(pipeline: Pipeline) -> dict[str, object]:
    return {"params": parameters_config(pipeline).configure_at_launch(), "staging": staging,
            "handles": handles_manager({}), "run_variables": run_variables}  # fmt: skip


def build_job(pipeline: Pipeline, step_ops: Mapping[str, dg.OpDefinition] | None = None,
              bound: Mapping[str, object] | None = None) -> dg.JobDefinition:  # fmt: skip
    """The pipeline as a Dagster job `<name>_job` (a job may not share an op's name): an op
    per step, edges from its dependencies, then `publish`."""
    step_ops = step_ops or ops(pipeline)
    publisher = op(pipeline, "publish", pipeline.order, partial(publish, pipeline),
                   config_schema={"output_dir": str}, required_resource_keys={"params"})

    def graph() -> None:
        publisher(**call_steps(pipeline, step_ops))

    return dg.job(
        name=f"{pipeline.name}_job", partitions_def=DAYS if pipeline.partition else None,
        executor_def=dg.in_process_executor, logger_defs={"console": stdout_console},
        resource_defs=dict(bound or resources(pipeline)),
    )(graph)  # fmt: skip
