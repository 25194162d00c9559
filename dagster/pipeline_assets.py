"""A declared pipeline's outputs as Dagster assets, beside its job (pipeline_job.py).

One asset per declared Output, keyed `<pipeline>/<step>[/<part>]`, materialized by a graph of
the job's own step ops and a `publish_assets` op that publishes every output with the one
recipe (parity.execution.publish_run). Assets are the published files, not the steps: a
step's result is staged only for as long as its run, so an asset a later run could load must
be what outlives the run. The assets' dependencies are those of the published steps, through
any step that publishes nothing, and they are materialized together, never a subset, because
a run publishes all its outputs with one manifest, as the job does.
"""

from collections.abc import Mapping

from pipeline_job import DAYS, Values, call_steps, op, ops, out_name, publish, resources

import dagster as dg
from parity import Output, Pipeline
from parity.layout import output_paths


def _publish_assets_op(pipeline: Pipeline) -> dg.OpDefinition:
    """`publish` with an output per declared Output, each the materialization of its asset:
    the published file's path and sha256 (the files themselves are publish_run's), kept by
    the assets' `io_manager`, in memory: nothing loads them, each run publishes its own."""

    def call(context: dg.OpExecutionContext, values: Values, handles: Mapping) -> tuple:
        digests = publish(pipeline, context, values, handles)
        paths, published = output_paths(pipeline, context.op_config["output_dir"]), []
        for output in pipeline.outputs:
            path = paths[output.name]
            found = {"path": path, "sha256": digests[output.name]}
            published.append(dg.Output(found, out_name(output), metadata={
                "path": dg.MetadataValue.path(path), "sha256": found["sha256"]}))  # fmt: skip
        return tuple(published)

    return op(pipeline, "publish_assets", pipeline.order, call,
              out={out_name(output): dg.Out(dict) for output in pipeline.outputs},
              config_schema={"output_dir": str}, required_resource_keys={"params"})  # fmt: skip


def asset_key(pipeline: Pipeline, output: Output) -> dg.AssetKey:
    """`<pipeline>/<step>[/<part>]`: the pipeline's name first, as two pipelines in one
    workspace (the deployed `pipelines` location) may publish an output of one name."""
    return dg.AssetKey([pipeline.name, *output.name.split(".")])


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


def build_assets(pipeline: Pipeline, step_ops: Mapping[str, dg.OpDefinition] | None = None,
                 bound: Mapping[str, object] | None = None) -> dg.AssetsDefinition:  # fmt: skip
    """The declared outputs as assets (see the module's docstring), partitioned by day as the
    job is, the parameters the same Config resource."""
    step_ops = step_ops or ops(pipeline)
    publisher = _publish_assets_op(pipeline)
    outs = [out_name(output) for output in pipeline.outputs]

    def graph() -> dict[str, object]:
        published = publisher(**call_steps(pipeline, step_ops))
        return dict(zip(outs, published if len(outs) > 1 else [published], strict=True))

    assets = dg.AssetsDefinition.from_graph(
        dg.graph(name=f"{pipeline.name}_assets", out={out: dg.GraphOut() for out in outs})(graph),
        keys_by_output_name={out_name(output): asset_key(pipeline, output)
                             for output in pipeline.outputs},
        internal_asset_deps={out_name(output): deps
                             for output, deps in asset_deps(pipeline).items()},
        partitions_def=DAYS if pipeline.partition else None,
    )  # fmt: skip
    with_io = {**(bound or resources(pipeline)), "io_manager": dg.mem_io_manager}
    return dg.with_resources([assets], with_io)[0]
