"""The declared pipelines the running stack knows of: `.state/stack/pipelines/<name>.json`.

A deployed run of `PIPELINE=p` (each orchestrator's `run_pipeline_deployed.py`) registers p
here before it submits anything; each orchestrator's own code reads this folder when its
servers load definitions (Airflow's DAG file airflow/pipeline_dags/, Dagster's code location
`pipelines`, Prefect's entrypoint prefect/deployed_pipelines.py), so the servers pick up a
pipeline of anyone's with no hand-edited configuration. One file per pipeline, replaced in
one step, so two pipelines registered at once never touch each other's entry; and one that
no longer loads is left out (with a line on stderr) rather than hiding the others. Nothing is
imported from an orchestrator: every environment reads it. `make down` keeps it (the stack's
folder outlives its processes); a later run registers its pipeline again anyway.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

from parity.declaration import Pipeline
from parity.errors import PipelineError
from parity.loader import load, reference_of

FOLDER = Path(__file__).resolve().parent.parent / ".state" / "stack" / "pipelines"


def register(pipeline: Pipeline, folder: Path = FOLDER) -> Path:
    """Record where `pipeline` comes from (its file's absolute path, or its module)."""
    entry = {"pipeline": reference_of(pipeline)}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{pipeline.name}.json"
    if path.exists() and json.loads(path.read_text(encoding="utf-8")) == entry:
        return path  # unchanged: no new file for the servers to notice
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{pipeline.name}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(entry, out)
    os.replace(temporary, path)
    return path


def registered(folder: Path = FOLDER) -> dict[str, Pipeline]:
    """Every registered pipeline that loads, by name."""
    found: dict[str, Pipeline] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            reference = json.loads(path.read_text(encoding="utf-8"))["pipeline"]
            pipeline, _ = load(reference)
        except (OSError, ValueError, KeyError, PipelineError) as exc:
            print(f"stack pipelines: {path}: left out: {exc}", file=sys.stderr)
            continue
        found[pipeline.name] = pipeline
    return found


def find(name: str, folder: Path = FOLDER) -> Pipeline:
    """The registered pipeline `name` (only its own entry is read)."""
    path = folder / f"{name}.json"
    try:
        reference = json.loads(path.read_text(encoding="utf-8"))["pipeline"]
    except (OSError, ValueError, KeyError) as exc:
        raise PipelineError(f"pipeline {name!r} is not registered with the stack ({path}): "
                            f"{exc}") from None  # fmt: skip
    pipeline, _ = load(reference)
    return pipeline
