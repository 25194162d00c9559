"""Step results staged as files between steps, so every wrapper hands a step the same values.

A result is a pandas DataFrame (staged as Parquet with pandas' own metadata, so it comes back
with the dtypes and index that pandas' Parquet round trip keeps), a pyarrow Table (Arrow IPC,
back as the same Table), or a dict of names to either. Only the handle, a small JSON-able
dict of paths, passes through an orchestrator's own storage.
"""

import os
from collections.abc import Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from parity.declaration import _NAME
from parity.errors import MachineFaultError, ResultError

Result = pd.DataFrame | pa.Table | dict[str, pd.DataFrame | pa.Table]
Handle = dict[str, object]


def stage(step: str, result: object, folder: str) -> Handle:
    """Write `result` under `folder`; return its handle. Refuses what is no table."""
    with MachineFaultError.on_os_error(folder, "create the staging folder"):
        os.makedirs(folder, exist_ok=True)
    if isinstance(result, Mapping):
        if not result:
            raise ResultError(f"step {step!r}: returned an empty dict; return tables")
        parts = {}
        for name, value in result.items():
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise ResultError(f"step {step!r}: result name {name!r} is not lower_snake_case")
            parts[name] = _stage_table(f"{step}.{name}", value, folder)
        return {"step": step, "parts": parts}
    return {"step": step, **_stage_table(step, result, folder)}


def restore(handle: Handle) -> Result:
    """The result `stage` wrote, in the type the step returned."""
    if "parts" in handle:
        return {name: _restore_table(part) for name, part in handle["parts"].items()}
    return _restore_table(handle)


def part(result: Result, name: str | None, output: str) -> pd.DataFrame | pa.Table:
    """One published piece of a step's result: the whole result, or one of its names."""
    if name is None:
        if isinstance(result, Mapping):
            raise ResultError(
                f"output {output!r}: the step returned names "
                f"{sorted(result)}: publish one as '{output}.<name>'"
            )
        return result
    if not isinstance(result, Mapping) or name not in result:
        found = sorted(result) if isinstance(result, Mapping) else "one table"
        raise ResultError(f"output {output!r}: the step returned no {name!r} ({found})")
    return result[name]


def _stage_table(label: str, value: object, folder: str) -> dict[str, str]:
    path = os.path.join(folder, label)
    if isinstance(value, pd.DataFrame):
        path += ".parquet"
        with MachineFaultError.on_os_error(path, "stage a result"):
            try:
                value.to_parquet(path, engine="pyarrow", compression=None)
            except (TypeError, ValueError, pa.ArrowException) as exc:
                if isinstance(exc, OSError):
                    raise
                raise ResultError(
                    f"step {label!r}: its DataFrame cannot be stored as Parquet: {exc}"
                ) from None
        return {"kind": "frame", "path": path}
    if isinstance(value, pa.Table):
        path += ".arrow"
        with (
            MachineFaultError.on_os_error(path, "stage a result"),
            pa.OSFile(path, "wb") as sink,
            ipc.new_file(sink, value.schema) as writer,
        ):
            writer.write_table(value)
        return {"kind": "table", "path": path}
    raise ResultError(
        f"step {label!r}: returned {type(value).__name__}, not a pandas DataFrame or a pyarrow "
        "Table (or a dict of names to them)"
    )


def _restore_table(handle: Mapping) -> pd.DataFrame | pa.Table:
    path = handle["path"]
    with MachineFaultError.on_os_error(path, "read a staged result"):
        if handle["kind"] == "frame":
            return pd.read_parquet(path, engine="pyarrow")
        with pa.OSFile(path, "rb") as source:  # read into memory: the file goes with the area
            return ipc.open_file(source).read_all()
