"""Contract §6: the run's record. It may differ between orchestrators; the Parquet files may not."""

import platform
from importlib.metadata import version

from shared_etl.contract import rejects_path
from shared_etl.errors import PipelineError

_LIBRARIES = ("pyarrow", "pandas", "numpy")


def build_manifest(
    prepared: dict, aggregated: dict, orchestrator: dict[str, str], aggregate_seconds: float
) -> dict:
    """The manifest document; refuses to exist when the counts do not reconcile."""
    kept = prepared["kept"]
    reconciled = prepared["records_read"] == kept + prepared["rejected"] + prepared["duplicates"]
    if not reconciled:
        raise PipelineError(
            f"counts do not reconcile for {prepared['input_path']}: records_read "
            f"{prepared['records_read']} != kept {kept} + rejected {prepared['rejected']} "
            f"+ duplicates {prepared['duplicates']}"
        )
    return {
        "orchestrator": orchestrator,
        "parameters": {
            "input_path": prepared["input_path"],
            "output_path": aggregated["output_path"],
            "date": aggregated["date"],
        },
        "input": {"sha256": prepared["input_sha256"], "size_bytes": prepared["input_bytes"]},
        "counts": {
            "records_read": prepared["records_read"],
            "kept": kept,
            "rejected": prepared["rejected"],
            "rejected_by_reason": prepared["rejected_by_reason"],
            "duplicates": prepared["duplicates"],
            "out_of_window": aggregated["out_of_window"],
            "metric_rows": aggregated["metric_rows"],
        },
        "reconciliation": {
            "rule": "records_read == kept + rejected + duplicates",
            "holds": reconciled,
        },
        "outputs": {
            "metrics": {
                "path": aggregated["output_path"],
                "sha256": aggregated["files"]["metrics"],
            },
            "rejects": {
                "path": rejects_path(aggregated["output_path"]),
                "sha256": aggregated["files"]["rejects"],
            },
        },
        "versions": {
            "python": platform.python_version(),
            "shared_etl": version("orchestrator-parity-harness"),
            **{name: version(name) for name in _LIBRARIES},
        },
        "attempts": {"prepare": prepared["attempts"], "aggregate": aggregated["attempts"]},
        "timings_seconds": {"prepare": prepared["seconds"], "aggregate": aggregate_seconds},
    }
