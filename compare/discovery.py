"""Finding the outputs and grouping the same logical file from each wrapper.

The layouts `make` writes (contract §8), relative to the compared folder (the root):
  <wrapper>_output.parquet, <wrapper>_output.rejects.parquet     one run per wrapper
  <any/path>/<wrapper>_output[.rejects].parquet                  e.g. date-2024-01-03/: DATE runs
  [<any/path>/]<wrapper>/<YYYY-MM-DD>[.rejects].parquet          a backfill per wrapper
  deployed/<any of the above>                                    the same, run in MODE=deployed
A group's key names the logical file: `run/metrics`, `date-2024-01-03/run/rejects`,
`backfill/2024-01-01/metrics`, ... Manifests are not compared: they may differ by design.
A file under a mode's folder (`deployed/`) has the key of its local twin and belongs to
`<wrapper>@deployed`: the same group holds both modes, so one verdict compares them.

A declared pipeline's outputs (docs/contract.md §10) have their own layout, under
`<root>` = `output/<pipeline>/` (`discover_pipeline`):
  <wrapper>/<output>.parquet                 key `run/<output>`
  date-<D>/<wrapper>/<output>.parquet        key `date-<D>/run/<output>`
  backfill/<wrapper>/<D>/<output>.parquet    key `backfill/<D>/<output>`
  deployed/<any of the above>                the same, `<wrapper>@deployed`

Every other Parquet file (a stray `foo.parquet`, `notes/x.parquet`, `random_output.parquet`,
a hidden name, a folder named `*.parquet`) is named as unknown, never taken as a wrapper's:
a gate that guesses can pass by mistake. Outputs of a known wrapper that is not expected
are set aside and named, not compared. Two files that would be one wrapper's same output
(two folders given that key alike, `out out/date-2024-01-03`) are an error, never one
silently replacing the other. Files given directly (`discover_files`) need no layout.
"""

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from compare import KNOWN_WRAPPERS, MODES

_SINGLE = re.compile(r"^(?P<wrapper>[A-Za-z0-9]+)_output(?:\.rejects)?\.parquet$")
_DATED = re.compile(r"^\d{4}-\d{2}-\d{2}(?:\.rejects)?\.parquet$")
# Folder names under the root that are the events layout's own, never a pipeline's.
RESERVED = frozenset({"events", "backfill", *MODES})
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OUTPUT = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?\.parquet$")
PIPELINE_LAYOUTS = ("<wrapper>/<output>.parquet, date-<D>/<wrapper>/<output>.parquet or "
                    "backfill/<wrapper>/<D>/<output>.parquet")  # fmt: skip
LAYOUTS = "<wrapper>_output[.rejects].parquet or <wrapper>/<YYYY-MM-DD>[.rejects].parquet"


class DiscoveryError(Exception):
    """A path given to compare does not exist, or is not under the root."""


@dataclass
class Found:
    """What discovery saw: the groups to compare and everything it would not compare."""

    groups: dict[str, dict[str, Path]]
    unknown: list[str] = field(default_factory=list)  # one reason per path, path first
    unexpected: dict[str, list[Path]] = field(default_factory=dict)  # wrapper: its files


def discover_pipeline(root: Path, wrappers: list[str], only: list[Path] | None = None) -> Found:
    """Every output of the `wrappers` expected under a pipeline's folder `root`, or under
    the folders and files `only` inside it (what `make all` has just written, so that an
    earlier run's leftovers, a DATE run of one wrapper say, are not compared)."""
    if not root.is_dir():
        raise DiscoveryError(f"{root}: no such folder")
    found = []
    for given in only or [root]:
        if not given.exists():
            raise DiscoveryError(f"{given}: no such file or folder")
        if _relative(given, root).parts[:1] == ("..",):
            raise DiscoveryError(f"{given}: not under the root {root}")
        found += [given] if given.is_file() else sorted(given.rglob("*.parquet"))
    candidates = [(path, root) for path in found]
    return _grouped(candidates, wrappers, _identify_pipeline_output)


def _identify_pipeline_output(relative: Path, path: Path, known: set[str]) -> tuple[str, str] | str:
    parts = relative.parts
    if path.is_dir() or any(part.startswith(".") for part in parts):
        return f"{path}: a folder or a hidden name, never an output"
    output = relative.name.removesuffix(".parquet")
    if _OUTPUT.match(relative.name):
        if len(parts) == 2 and parts[0] in known:
            return f"run/{output}", parts[0]
        if len(parts) == 3 and parts[0].startswith("date-") and parts[1] in known:
            return f"{parts[0]}/run/{output}", parts[1]
        if (
            len(parts) == 4
            and parts[0] == "backfill"
            and parts[1] in known
            and _DAY.match(parts[2])
        ):
            return f"backfill/{parts[2]}/{output}", parts[1]
    return f"{path}: not an output of any wrapper (expected {PIPELINE_LAYOUTS})"


def _grouped(candidates: list[tuple[Path, Path]], wrappers: list[str], identify) -> Found:
    """Group (path, base) candidates by the key `identify` gives each; name the rest."""
    known = {*KNOWN_WRAPPERS, *(wrapper.partition("@")[0] for wrapper in wrappers)}
    groups: dict[str, dict[str, Path]] = defaultdict(dict)
    found = Found(groups={})
    unexpected: dict[str, list[Path]] = defaultdict(list)
    for path, base in candidates:
        mode, relative = _mode_of(_relative(path, base))
        identified = identify(relative, path, known)
        if isinstance(identified, str):
            found.unknown.append(identified)
            continue
        key, wrapper = identified
        wrapper = f"{wrapper}@{mode}" if mode else wrapper
        if wrapper not in wrappers:
            unexpected[wrapper].append(path)
        elif wrapper in groups[key] and not _same_entry(groups[key][wrapper], path):
            raise DiscoveryError(
                f"{groups[key][wrapper]} and {path} would both be {wrapper}'s {key}: "
                f"compare them directly (parity-compare A.parquet B.parquet), or give --root"
            )
        else:
            groups[key][wrapper] = path
    found.groups = {key: dict(sorted(members.items())) for key, members in sorted(groups.items())}
    found.unexpected = dict(sorted(unexpected.items()))
    return found


def _same_entry(one: Path, other: Path) -> bool:
    """One directory entry reached twice (a folder and a file in it both given)."""
    return os.path.abspath(one) == os.path.abspath(other)


def discover_files(paths: list[Path]) -> Found:
    """Files given directly: one group, keyed by the first file's path (the baseline), each
    side named by its path as given. Two names for one file are refused: a file compared
    with itself proves nothing."""
    for given in paths:
        if not given.is_file():
            raise DiscoveryError(f"{given}: no such file")
    for n, given in enumerate(paths):
        for earlier in paths[:n]:
            if str(earlier) == str(given) or os.path.samefile(earlier, given):
                raise DiscoveryError(f"{earlier} and {given} are one file: comparing a file "
                                     f"with itself proves nothing")  # fmt: skip
    return Found(groups={str(paths[0]): {str(path): path for path in paths}})


def discover(paths: list[Path], wrappers: list[str], root: Path | None = None) -> Found:
    """Every output under `paths` (folders or files) of the `wrappers` expected.

    Keys are relative to `root` (default: each folder given, or a file's own folder), so
    `compare --root output output/backfill/prefect` keys as `compare output` would.
    """
    candidates = []
    for given in paths:
        if not given.exists():
            raise DiscoveryError(f"{given}: no such file or folder")
        base = root or (given if given.is_dir() else given.parent)
        if _relative(given, base).parts[:1] == ("..",):
            raise DiscoveryError(f"{given}: not under the root {base}")
        found = [given] if given.is_file() else sorted(given.rglob("*.parquet"))
        pipelines = _pipeline_folders(base)
        candidates += [(path, base) for path in found
                       if _relative(path, base).parts[0] not in pipelines]  # fmt: skip
    return _grouped(candidates, wrappers, _identify)


def _pipeline_folders(base: Path) -> set[str]:
    """The folders under `base` that hold a declared pipeline's outputs (a manifest there
    names the folder as its pipeline): left alone by the events layout, compared with
    `--layout pipeline`."""
    if not base.is_dir():
        return set()
    names = set()
    for folder in base.iterdir():
        if not folder.is_dir() or folder.name in RESERVED or folder.name.startswith("date-"):
            continue
        for manifest in folder.glob("**/manifest.json"):
            try:
                if json.loads(manifest.read_text()).get("pipeline") == folder.name:
                    names.add(folder.name)
                    break
            except (OSError, ValueError, AttributeError):
                continue
    return names


def _relative(path: Path, base: Path) -> Path:
    """`path` from `base`, by name only: a symlink is an entry here, not where it points."""
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(base)))


def _mode_of(relative: Path) -> tuple[str | None, Path]:
    """The mode whose folder holds the file (None: local) and its path inside that folder."""
    if len(relative.parts) > 1 and relative.parts[0] in MODES:
        return relative.parts[0], Path(*relative.parts[1:])
    return None, relative


def _identify(relative: Path, path: Path, known: set[str]) -> tuple[str, str] | str:
    """(group key, wrapper) for an output's path relative to the root, or why it is none."""
    if path.is_dir():
        return f"{path}: a folder named like a Parquet file, not an output"
    if any(part.startswith(".") for part in relative.parts):
        return f"{path}: a hidden name, never an output (expected {LAYOUTS})"
    kind = "rejects" if relative.name.endswith(".rejects.parquet") else "metrics"
    prefix = relative.parent.as_posix()
    single = _SINGLE.match(relative.name)
    if single and single["wrapper"] in known:
        key = "run" if prefix == "." else f"{prefix}/run"
        return f"{key}/{kind}", single["wrapper"]
    if _DATED.match(relative.name) and relative.parent.name in known:
        day = relative.name[: len("YYYY-MM-DD")]
        folder = relative.parent.parent.as_posix()
        key = day if folder == "." else f"{folder}/{day}"
        return f"{key}/{kind}", relative.parent.name
    return f"{path}: not an output of any wrapper (expected {LAYOUTS})"
