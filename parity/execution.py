"""What a task does, in every wrapper: one step called with its values and its dependencies'
staged results, its own result staged; and the outputs published at the end of a run.

Adapters call `run_step` as the body of their native task and `publish_run` as the last one;
the reference runner (parity.reference) calls them in order, each step once.
"""

import inspect
import os
import platform
import time
from collections.abc import Callable, Mapping
from importlib.metadata import version

from parity import layout
from parity.binding import input_files, to_json
from parity.declaration import Pipeline
from parity.errors import InputError, PipelineError, ResultError
from parity.faults import inject_fault
from parity.files import file_sha256
from parity.publication import output_table, publish
from parity.results import Handle, part, restore, stage

_LIBRARIES = ("pyarrow", "pandas", "numpy")


def run_step(
    pipeline: Pipeline,
    name: str,
    values: Mapping[str, object],
    inputs: Mapping[str, Handle],
    staging_dir: str,
    attempt: int = 1,
) -> Handle:
    """Call step `name` and stage its result under `staging_dir`; return the handle.

    An InputError comes out naming the step (exit 2, never retried); any other exception is
    left as it is, for the orchestrator's retry policy to judge (parity.is_retryable).
    """
    inject_fault(name, attempt)
    declared = pipeline.steps[name]
    arguments = {
        argument: restore(inputs[argument])
        if argument in pipeline.dependencies[name]
        else values[argument]
        for argument in declared.arguments
    }
    started = time.perf_counter()
    try:
        result = declared.function(**arguments)
    except InputError as exc:
        raise InputError(f"step {name!r}: {exc}") from None
    handle = stage(name, result, os.path.join(staging_dir, name))
    handle["seconds"] = round(time.perf_counter() - started, 3)
    handle["attempts"] = attempt
    return handle


def publish_run(
    pipeline: Pipeline,
    values: Mapping[str, object],
    handles: Mapping[str, Handle],
    destination: str,
    wrapper: Mapping[str, object],
) -> dict[str, str]:
    """Publish every output of a run, with its manifest, at `destination` (parity.layout);
    return the sha256 by output."""
    results = {name: restore(handles[name]) for name in _read_at_publication(pipeline)}
    tables = {
        output.name: output_table(output, part(results[output.step], output.part, output.name))
        for output in pipeline.outputs
    }
    manifest = {
        "pipeline": pipeline.name,
        "wrapper": dict(wrapper),
        "parameters": to_json(values),
        "destination": destination,
        "inputs": {
            name: {"path": path, "sha256": file_sha256(path), "size_bytes": os.path.getsize(path)}
            for name, path in input_files(values).items()
        },
        "outputs": {output.name: {"key": list(output.key)} for output in pipeline.outputs},
        "attempts": {name: handle.get("attempts", 1) for name, handle in handles.items()},
        "timings_seconds": {name: handle.get("seconds") for name, handle in handles.items()},
        "versions": {
            "python": platform.python_version(),
            "parity": version("orchestrator-parity-harness"),
            **{library: version(library) for library in _LIBRARIES},
        },
    }
    if pipeline.manifest is not None:
        entries = _called(pipeline.manifest, values, results)
        if not isinstance(entries, Mapping) or set(entries) & set(manifest):
            raise ResultError(f"pipeline {pipeline.name!r}: its manifest function must return "
                              f"a dict of entries other than {', '.join(sorted(manifest))}")
        manifest.update(entries)
    return publish(tables, layout.output_paths(pipeline, destination),
                   layout.manifest_path(destination), manifest)  # fmt: skip


def _read_at_publication(pipeline: Pipeline) -> list[str]:
    """The steps whose results publication reads: each once, whoever reads it."""
    wanted = [output.step for output in pipeline.outputs]
    if pipeline.manifest is not None:
        wanted += [name for name in inspect.signature(pipeline.manifest).parameters
                   if name in pipeline.steps]  # fmt: skip
    return list(dict.fromkeys(wanted))


def _called(function: Callable, values: Mapping[str, object],
            results: Mapping[str, object]) -> Mapping[str, object]:  # fmt: skip
    """`function` called as a step is: a parameter named like a step takes its result."""
    names = inspect.signature(function).parameters
    return function(**{name: results[name] if name in results else values[name]
                       for name in names if name in results or name in values})  # fmt: skip


def step_failure(name: str, error: BaseException) -> PipelineError:
    """The one line for a step that failed for good (retries exhausted, or none)."""
    if isinstance(error, PipelineError):
        return error
    message = " ".join(str(error).split())  # one line, whatever the exception's text
    return PipelineError(f"step {name!r} failed: {type(error).__name__}: {message}")
