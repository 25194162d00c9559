"""Where a run's outputs go, from the one destination string every wrapper hands along (a
Prefect flow parameter, an Airflow DAG run's conf, a Dagster op's config), so that no adapter
knows a layout and every wrapper lays its files out alike.

- A folder `D`: `D/<output>.parquet` for each output and `D/manifest.json` (contract §10).
- A file `P` ending in `.parquet`: the first declared output at `P`, every other at `P` with
  `.parquet` replaced by `.<output>.parquet`, the manifest with it replaced by
  `.manifest.json`. That is the events pipeline's own layout (contract §6: `P`,
  `P.rejects.parquet`, `P.manifest.json`), open to any pipeline.

A backfill's destination gives each date's: `DIR` gives `DIR/<date>/`; a destination holding
`{date}` (`DIR/{date}.parquet`, the events backfill's layout) has it replaced by the date.
"""

import datetime as dt
import os

from parity.declaration import Pipeline
from parity.errors import UsageError
from parity.files import check_output_dir

MANIFEST = "manifest.json"
DATE_PLACEHOLDER = "{date}"
_SUFFIX = ".parquet"


def is_file(destination: str) -> bool:
    return destination.endswith(_SUFFIX)


def output_paths(pipeline: Pipeline, destination: str) -> dict[str, str]:
    """The path of each declared output, by its name."""
    if not is_file(destination):
        return {out.name: os.path.join(destination, out.name + _SUFFIX) for out in pipeline.outputs}
    stem = destination.removesuffix(_SUFFIX)
    first = pipeline.outputs[0].name
    return {out.name: destination if out.name == first else f"{stem}.{out.name}{_SUFFIX}"
            for out in pipeline.outputs}  # fmt: skip


def manifest_path(destination: str) -> str:
    if is_file(destination):
        return destination.removesuffix(_SUFFIX) + ".manifest.json"
    return os.path.join(destination, MANIFEST)


def for_date(destination: str, day: dt.date) -> str:
    """A backfill's destination for `day`: `{date}` replaced, else a folder `<date>/` in it."""
    if DATE_PLACEHOLDER in destination:
        return destination.replace(DATE_PLACEHOLDER, day.isoformat())
    return os.path.join(destination, day.isoformat())


def check(destination: str) -> None:
    """Refuse, before any input is read, a destination that could never be published: a file
    name that is hidden (every listing, compare's too, skips it) or a folder that cannot be
    written in."""
    if DATE_PLACEHOLDER in destination:
        raise UsageError(f"output {destination!r}: {DATE_PLACEHOLDER} names a backfill's dates; "
                         "a run has one destination")  # fmt: skip
    if not is_file(destination):
        check_output_dir(destination)
        return
    if os.path.basename(destination).startswith("."):
        raise UsageError(f"output path {destination!r}: a name starting with '.' is hidden "
                         "(compare never sees it); choose another name")  # fmt: skip
    if os.path.isdir(destination):
        raise UsageError(f"output path {destination!r} is a folder, not a <name>.parquet file")
    check_output_dir(os.path.dirname(destination) or ".")
