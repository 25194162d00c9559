"""Contract §6: the counts of the run's manifest, and the rule they must reconcile by."""

from shared_etl.errors import PipelineError


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
