"""What the manifests beside an output say about it: its key and the library versions.

A declared pipeline's folder has one `manifest.json` for all its outputs (contract §10),
which records each output's key, and so does its `<P>.manifest.json` in the file layout; the
events wrappers write `<P>.manifest.json` beside `<P>.parquet` (§6), whose grain is §6's.
A manifest that cannot be read is one line: an error where the key depends on it, a note
where only the versions do.
"""

import json
from pathlib import Path

# The events pipeline's grains (contract §6), by the kind of file.
EVENTS_GRAINS = {
    "metrics": ("event_date", "country", "event_type"),
    "rejects": ("source_row",),
}


class ManifestError(Exception):
    """A manifest that an output's key depends on is damaged: one line naming it."""


def declared_grain(path: Path) -> tuple[str, ...] | None:
    """The key a declared pipeline's manifest records for `path`: the manifest.json of its
    folder, or, in the file layout (parity.layout: `P.parquet`, `P.<output>.parquet`), the
    `P.manifest.json` whose outputs name this file. None when no manifest declares it."""
    manifest = path.with_name("manifest.json")
    if manifest.is_file():
        return _key(manifest, _read(manifest), path.name.removesuffix(".parquet"), path)
    parts = path.name.removesuffix(".parquet").split(".")
    for stem in (".".join(parts[:n]) for n in range(len(parts), 0, -1)):
        manifest = path.with_name(f"{stem}.manifest.json")
        recorded = _read(manifest) if manifest.is_file() else None
        if isinstance(recorded, dict) and isinstance(recorded.get("outputs"), dict):
            for name, entry in recorded["outputs"].items():
                if isinstance(entry, dict) and entry.get("file") == path.name:
                    return _key(manifest, recorded, name, path)
    return None


def _key(manifest: Path, recorded: dict | str, output: str, path: Path) -> tuple[str, ...]:
    if isinstance(recorded, str):
        raise ManifestError(f"{manifest}: a damaged manifest ({recorded}), no key for {path.name}")
    outputs = recorded.get("outputs")
    entry = outputs.get(output) if isinstance(outputs, dict) else None
    key = entry.get("key") if isinstance(entry, dict) else None
    if not isinstance(key, list) or not key or not all(isinstance(k, str) for k in key):
        raise ManifestError(f"{manifest}: a damaged manifest, no key (a list of column names) "
                            f"for {path.name}")  # fmt: skip
    return tuple(key)


def events_manifest(path: Path) -> Path:
    """`<P>.manifest.json` for `<P>.parquet` and `<P>.rejects.parquet` (contract §6)."""
    stem = path.name.removesuffix(".parquet").removesuffix(".rejects")
    return path.with_name(f"{stem}.manifest.json")


def events_grain(path: Path) -> tuple[str, ...]:
    return EVENTS_GRAINS["rejects" if path.name.endswith(".rejects.parquet") else "metrics"]


def library_versions(path: Path) -> dict[str, str] | str:
    """The versions the manifest of the output `path` records ({} when it has none), or,
    for a manifest that cannot be read, one line saying why."""
    manifest = events_manifest(path)
    if not manifest.is_file():
        manifest = path.with_name("manifest.json")
        if not manifest.is_file():
            return {}
    recorded = _read(manifest)
    if isinstance(recorded, str):
        return f"{manifest}: a damaged manifest ({recorded}); library versions not compared"
    versions = recorded.get("versions", {})
    if not isinstance(versions, dict):
        return f"{manifest}: its versions are not an object; library versions not compared"
    return {name: str(version) for name, version in versions.items()}


def _read(manifest: Path) -> dict | str:
    """The manifest's JSON object, or why there is none."""
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    except (ValueError, UnicodeDecodeError) as exc:
        return f"not JSON: {exc}"
    if not isinstance(recorded, dict):
        return f"not a JSON object but {type(recorded).__name__}"
    return recorded
