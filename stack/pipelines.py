"""The declared pipelines the running stack knows of: `.state/stack/pipelines/<name>.json`.

A deployed run of `PIPELINE=p` (each orchestrator's `run_pipeline_deployed.py`) registers p
here before it submits anything; each orchestrator's own code reads this folder when its
servers load definitions (Airflow's DAG file airflow/deployed/pipeline_dags/, Dagster's code
location `pipelines`, Prefect's entrypoint prefect/deployed_pipelines.py), so the servers pick
up a pipeline of anyone's with no hand-edited configuration. One entry per pipeline name, as
each orchestrator shows one DAG, deployment or repository per name; replaced in one step, so
two pipelines registered at once never touch each other's entry.

A name is held while a command runs it: `register` takes a shared `flock` on `<name>.lock`,
which this process keeps until it ends (the kernel drops it then, SIGKILL included), because
the workers load the pipeline's code from the entry while the run goes on. Another file that
declares the same name is refused (one line naming both files, exit 2) while any command of
the registered file holds it, and replaces the entry once none does. An entry whose file is
gone, or now declares another name, is left out (with a line on stderr) rather than breaking
or hiding the others, and is replaced by the next file registered under its name. Nothing is
imported from an orchestrator: every environment reads it. `make down` keeps the folder (it
outlives the stack's processes); a later run registers its pipeline again anyway.
"""

import fcntl
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from parity.declaration import Pipeline
from parity.errors import PipelineError, UsageError
from parity.loader import load, reference_of
from parity.registry import DEFAULT_PIPELINE

FOLDER = Path(__file__).resolve().parent.parent / ".state" / "stack" / "pipelines"
MUTEX = ".registry.lock"  # held only while an entry is checked and written
# The names this process holds: (folder, name) -> (the lease's descriptor, the reference).
_leases: dict[tuple[Path, str], tuple[int, str]] = {}


def register(pipeline: Pipeline, folder: Path = FOLDER) -> Path:
    """Record where `pipeline` comes from (its file's absolute path, or its module) and hold
    its name for the rest of this process; refuse another file's pipeline of that name while
    a run of it holds the name."""
    name, reference = pipeline.name, reference_of(pipeline)
    path = folder / f"{name}.json"
    held = _leases.get((folder, name))
    if held is not None and held[1] == reference:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with _mutex(folder):
        lease = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            current = _reference_in(path)
            if current != reference:
                try:  # no holder of the current entry, this process included
                    fcntl.flock(lease, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise UsageError(
                        f"pipeline {name!r}: {reference} cannot be registered with the stack: "
                        f"{current}, registered under the same name ({path}), is running; "
                        "give one of them another Pipeline name, or wait for that run to end"
                    ) from None
                _write(path, {"pipeline": reference})
                if current is not None and os.path.exists(current):
                    print(f"stack pipelines: {name!r} is now {reference} (was {current})",
                          file=sys.stderr)  # fmt: skip
            fcntl.flock(lease, fcntl.LOCK_SH)  # others wait on the mutex meanwhile
        except BaseException:
            os.close(lease)
            raise
    if held is not None:
        os.close(held[0])
    _leases[(folder, name)] = (lease, reference)
    return path


def registered(folder: Path = FOLDER) -> dict[str, Pipeline]:
    """Every registered pipeline that loads and still declares its entry's name, by name."""
    found: dict[str, Pipeline] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found[path.stem] = _load(path)
        except PipelineError as exc:
            print(f"stack pipelines: {path}: left out: {exc}", file=sys.stderr)
    return found


def find(name: str, folder: Path = FOLDER) -> Pipeline:
    """The registered pipeline `name` (only its own entry is read)."""
    path = folder / f"{name}.json"
    if not path.exists():
        raise PipelineError(f"pipeline {name!r} is not registered with the stack ({path})")
    return _load(path)


def _load(path: Path) -> Pipeline:
    reference = _reference_in(path)
    if reference is None:
        raise PipelineError(f"{path}: no readable entry")
    pipeline, _ = load(reference)
    if pipeline.name != path.stem:
        raise PipelineError(f"{reference} declares {pipeline.name!r} now, not {path.stem!r}")
    return pipeline


def _reference_in(path: Path) -> str | None:
    """The entry's reference; None when there is no entry (or none readable: replaced)."""
    try:
        reference = json.loads(path.read_text(encoding="utf-8"))["pipeline"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return reference if isinstance(reference, str) else None


def _write(path: Path, entry: dict) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(entry, out)
    os.replace(temporary, path)


@contextmanager
def _mutex(folder: Path) -> Iterator[None]:
    with open(folder / MUTEX, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def register_default() -> None:
    """Register the default pipeline (the events pipeline) as `make up` starts the servers, so
    each UI shows it from the start, as a user opening one after `make up` expects. Its code
    needs the runtime's libraries, which the stack's own environment lacks: the reference
    environment loads and registers it (`python -m stack.pipelines`)."""
    project = FOLDER.parents[2]
    python = project / ".venvs" / "reference" / "bin" / "python"
    done = subprocess.run([str(python), "-m", "stack.pipelines", DEFAULT_PIPELINE],
                          cwd=project, capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PipelineError(f"stack pipelines: {DEFAULT_PIPELINE} not registered: {last}")


if __name__ == "__main__":
    register(load(sys.argv[1])[0])
