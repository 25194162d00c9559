"""The front door's step before a run of PIPELINE= in one environment: install the
`requirements.txt` beside the pipeline (if there is one) into that environment's overlay
(parity/requirements.py), constrained to the environment's uv.lock pins.

A requirement that would change a pinned package is refused in one line, exit 2, and nothing
is installed; an overlay already installed for the same file and pins is reused as it is.
  pipeline_requirements.py PIPELINE --env NAME --venv DIR --uv UV [--sync-args "uv sync flags"]
"""

import argparse
import fcntl
import hashlib
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from parity import requirements

PROJECT = Path(__file__).resolve().parent.parent


def pipeline_folder(reference: str) -> Path | None:
    """The folder of the pipeline's file, found without running it."""
    if reference.endswith(".py") or os.sep in reference:
        return Path(reference).resolve().parent
    sys.path.insert(0, os.getcwd())
    try:
        spec = importlib.util.find_spec(reference)
    except ImportError:
        spec = None
    return Path(spec.origin).parent if spec and spec.origin else None  # the loader says why


def pins(uv: str, sync_args: list[str], into: Path) -> None:
    """Write the environment's pins (uv.lock, as `make setup` installs it) to `into`."""
    subprocess.run([uv, "export", "--quiet", "--locked", "--no-hashes", "--no-emit-project",
                    "--format", "requirements.txt", *sync_args, "--output-file", str(into)],
                   cwd=PROJECT, check=True)  # fmt: skip


def refusal(file: Path, env: str, uv_error: str) -> str:
    """uv's resolver message, as one line saying what the user can change."""
    lines = [line.strip().removeprefix("cause: ") for line in uv_error.splitlines()]
    reason = " ".join(line for line in lines if line and not line.startswith("error: No solution"))
    return (f"error: {file}: cannot be installed in the {env} environment without changing a "
            f"package the harness pins (uv.lock): {reason or 'uv failed'}")  # fmt: skip


def install(file: Path, env: str, venv: Path, uv: str, sync_args: list[str]) -> None:
    place = requirements.overlay(file, env)
    place.parent.mkdir(parents=True, exist_ok=True)
    with open(place.parent / ".lock", "w") as lock:  # one installer per environment at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock_sha = hashlib.sha256((PROJECT / "uv.lock").read_bytes()).hexdigest()
        stamp = place / requirements.STAMP
        if stamp.is_file() and stamp.read_text() == lock_sha:
            return  # installed for these pins: no uv at all on the way to a run
        constraints = place.parent / f".pins-{os.getpid()}.txt"
        pins(uv, sync_args, constraints)
        building = place.with_name(f"{place.name}.building")
        shutil.rmtree(building, ignore_errors=True)
        result = subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
             "--target", str(building), "--constraints", str(constraints), "-r", str(file)],
            cwd=PROJECT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        constraints.unlink()
        if result.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            sys.exit(print(refusal(file, env, result.stderr), file=sys.stderr) or 2)
        (building / requirements.STAMP).write_text(lock_sha)
        shutil.rmtree(place, ignore_errors=True)
        building.rename(place)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline")
    parser.add_argument("--env", required=True)
    parser.add_argument("--venv", required=True, type=Path)
    parser.add_argument("--uv", required=True)
    parser.add_argument("--sync-args", default="")
    args = parser.parse_args()
    folder = pipeline_folder(args.pipeline)
    file = folder / requirements.FILE_NAME if folder else None
    if file and file.is_file():
        install(file, args.env, args.venv, args.uv, shlex.split(args.sync_args))


if __name__ == "__main__":
    main()
