"""What a task does, in every wrapper: one step called with its values and its dependencies'
staged results, its own result staged; and the outputs published at the end of a run.

Adapters call `run_step` as the body of their native task and `publish_run` as the last one;
the reference runner (parity.reference) calls them in order, each step once.
"""

import os
import platform
import time
from collections.abc import Mapping
from importlib.metadata import version

from parity.binding import input_files, to_json
from parity.declaration import Pipeline
from parity.errors import InputError, PipelineError
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
    output_dir: str,
    wrapper: Mapping[str, object],
) -> dict[str, str]:
    """Publish every output of a run, with its manifest; return the sha256 by output."""
    tables = {}
    for output in pipeline.outputs:
        result = restore(handles[output.step])
        tables[output.name] = output_table(output, part(result, output.part, output.name))
    manifest = {
        "pipeline": pipeline.name,
        "wrapper": dict(wrapper),
        "parameters": to_json(values),
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
    return publish(tables, output_dir, manifest)


def step_failure(name: str, error: BaseException) -> PipelineError:
    """The one line for a step that failed for good (retries exhausted, or none)."""
    if isinstance(error, PipelineError):
        return error
    message = " ".join(str(error).split())  # one line, whatever the exception's text
    return PipelineError(f"step {name!r} failed: {type(error).__name__}: {message}")
