"""A pipeline's own packages: a `requirements.txt` beside its file (docs/own-pipeline.md).

They are never installed into the harness's environments, which stay exactly uv.lock: each
environment gets an overlay folder per requirements file, installed by the front door
(scripts/pipeline_requirements.py) under that environment's pins, so a requirement that would
change a pinned package is refused instead of installed. The overlay is appended to
`sys.path`, after the environment's own packages, so a package both hold is always the
pinned one; two pipelines with different requirements never see each other's.
"""

import hashlib
import os
import sys
from pathlib import Path

from parity.errors import UsageError

FILE_NAME = "requirements.txt"
ROOT = Path(__file__).resolve().parent.parent / ".state" / "requirements"
# Written last by the installer: the overlay is complete, for these pins (uv.lock's sha256).
STAMP = ".installed"
# Set in the container images (Dockerfile), which have no installer: there, a requirements
# file is refused as such, not as one make has yet to install.
IMAGE_VARIABLE = "PARITY_IMAGE"


def environment() -> str:
    """The harness environment this process runs in: .venvs/<name>."""
    return Path(sys.prefix).name


def overlay(requirements: Path, env: str) -> Path:
    """The folder `requirements` is installed in for `env`: one per file content."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    return ROOT / env / digest


def activate(folder: str | None) -> None:
    """Make the packages of the requirements file in `folder` (if any) importable here."""
    requirements = Path(folder or ".", FILE_NAME)
    if folder is None or not requirements.is_file():
        return
    if os.environ.get(IMAGE_VARIABLE):
        raise UsageError(
            f"{requirements}: the images do not install a pipeline's requirements.txt (they "
            "hold exactly uv.lock; docs/containers.md); run it locally: make all PIPELINE=..."
        )
    env = environment()
    place = overlay(requirements, env)
    if not (place / STAMP).is_file():
        raise UsageError(
            f"{requirements}: not installed in the {env} environment; run the pipeline through "
            "make (make <wrapper> PIPELINE=...), which installs it"
        )
    if str(place) not in sys.path:
        sys.path.append(str(place))
