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
    checked = reconciled_counts(
        prepared["input_path"], prepared["records_read"], prepared["kept"],
        prepared["rejected_by_reason"], prepared["duplicates"], aggregated["out_of_window"],
        aggregated["metric_rows"],
    )  # fmt: skip
    return {
        "orchestrator": orchestrator,
        "parameters": {
            "input_path": prepared["input_path"],
            "output_path": aggregated["output_path"],
            "date": aggregated["date"],
        },
        "input": {"sha256": prepared["input_sha256"], "size_bytes": prepared["input_bytes"]},
        **checked,
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


def reconciled_counts(input_path: str, records_read: int, kept: int,
                      rejected_by_reason: dict[str, int], duplicates: int, out_of_window: int,
                      metric_rows: int) -> dict:  # fmt: skip
    """The manifest's counts and their reconciliation; a run whose counts do not reconcile
    is refused (nothing published), since a record would be lost or counted twice."""
    rejected = sum(rejected_by_reason.values())
    if records_read != kept + rejected + duplicates:
        raise PipelineError(
            f"counts do not reconcile for {input_path}: records_read {records_read} != kept "
            f"{kept} + rejected {rejected} + duplicates {duplicates}"
        )
    return {
        "counts": {
            "records_read": records_read,
            "kept": kept,
            "rejected": rejected,
            "rejected_by_reason": rejected_by_reason,
            "duplicates": duplicates,
            "out_of_window": out_of_window,
            "metric_rows": metric_rows,
        },
        "reconciliation": {"rule": "records_read == kept + rejected + duplicates", "holds": True},
    }
