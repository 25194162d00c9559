"""Finding the outputs and grouping the same logical file from each wrapper.

Two layouts, the ones `make` writes (SPEC §8):
  <root>/<wrapper>_output.parquet, <wrapper>_output.rejects.parquet   one run per wrapper
  <root>/<any/path>/<wrapper>/<name>.parquet                           a backfill per wrapper
A group's key names the logical file: `run/metrics`, `run/rejects`,
`backfill/2024-01-01/metrics`, ... Manifests are not compared: they may differ by design.
"""

import re
from collections import defaultdict
from pathlib import Path

_SINGLE = re.compile(r"^(?P<wrapper>[A-Za-z0-9]+)_output(?P<rejects>\.rejects)?\.parquet$")


class DiscoveryError(Exception):
    """A path given to compare does not exist."""


def discover(paths: list[Path]) -> dict[str, dict[str, Path]]:
    """{group key: {wrapper: file}} for every output under `paths` (folders or files)."""
    groups: dict[str, dict[str, Path]] = defaultdict(dict)
    for root in paths:
        if not root.exists():
            raise DiscoveryError(f"{root}: no such file or folder")
        files = [root] if root.is_file() else sorted(root.rglob("*.parquet"))
        for path in files:
            if any(part.startswith(".") for part in path.parts[len(root.parts) :]):
                continue  # temporary files of a write in progress, staging folders
            key, wrapper = _identify(path, root if root.is_dir() else root.parent)
            groups[key][wrapper] = path
    return {key: dict(sorted(members.items())) for key, members in sorted(groups.items())}


def _identify(path: Path, root: Path) -> tuple[str, str]:
    kind = "rejects" if path.name.endswith(".rejects.parquet") else "metrics"
    single = _SINGLE.match(path.name)
    if single:
        prefix = path.parent.relative_to(root).as_posix()
        key = "run" if prefix == "." else f"{prefix}/run"
        return f"{key}/{kind}", single["wrapper"]
    stem = path.name.removesuffix(".parquet").removesuffix(".rejects")
    folder = path.parent.parent.relative_to(root).as_posix()
    key = stem if folder == "." else f"{folder}/{stem}"
    return f"{key}/{kind}", path.parent.name
