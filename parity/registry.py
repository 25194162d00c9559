"""The one registry of the harness's wrappers: `parity/wrappers.txt`, one name a line.

A plain file, so that make (`$(file <...)`), bash (`mapfile`) and Python read the same list
with nothing installed; this module is its Python reader and the only one that checks it
(tests/test_registry.py holds the other readers, and docker-compose.yml, to it). The order is
the order every listing shows: the reference runner first, then the orchestrators. Adding a
wrapper is one line here plus its own folder, its make recipe and its compose services.
It ships in the wheel beside this module, so the images' `compare` reads it too.
"""

import re
from pathlib import Path

REGISTRY = Path(__file__).with_name("wrappers.txt")
# The wrapper with no orchestrator: the runner every other wrapper is compared with.
REFERENCE = "reference"
# A wrapper's name is a make target, a folder, a database and a compose service.
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def read(path: Path = REGISTRY) -> tuple[str, ...]:
    """The wrapper names in `path`, in its order; a ValueError naming the line otherwise."""
    names: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not _NAME.fullmatch(line):
            raise ValueError(f"{path}:{number}: {line!r} is not a wrapper name ({_NAME.pattern})")
        if line in names:
            raise ValueError(f"{path}:{number}: {line!r} is listed twice")
        names.append(line)
    if names[:1] != [REFERENCE]:
        raise ValueError(f"{path}: the first wrapper must be {REFERENCE!r}, the one compared with")
    return tuple(names)


# The pipeline the front door runs when no PIPELINE= is given, and the one the events command
# line (`--input-path … --output-path …`, parity.cli's seed form) always runs.
DEFAULT_PIPELINE = "shared_etl.pipeline"

WRAPPERS = read()
# The wrappers that run an orchestrator: each has an environment's extra, an image's extra and
# a database in the deployed stack.
ORCHESTRATORS = WRAPPERS[1:]
