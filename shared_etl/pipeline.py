"""The events pipeline declared with the runtime's API (docs/contract.md §10), so that every
generic adapter runs it as it runs anyone's pipeline: `make all PIPELINE=shared_etl.pipeline`.

Its outputs are the contract's two files, byte for byte: `metrics` (the daily metrics of one
date, or of all dates) and `rejects` (the quarantine of the whole file, the same for every
date). `validated` reads, checks and de-duplicates the file once per run; a backfill runs it
once and `metrics` once per date, as the events wrappers do. Its steps are the same pure
functions shared_etl's own commands call, so no byte of the events pipeline is written twice.
"""

import datetime as dt

import pyarrow as pa

from parity import Output, Pipeline, step
from shared_etl.contract import METRICS_KEY
from shared_etl.events import prepare_events, rejected_by_reason
from shared_etl.manifest import reconciled_counts
from shared_etl.metrics import daily_metrics, rows_in_window

# As the events wrappers: a step that failed for a reason that may pass is tried twice more.
RETRIES, RETRY_DELAY_SECONDS = 2, 1


@step(retries=RETRIES, retry_delay_seconds=RETRY_DELAY_SECONDS)
def validated(input_path: str) -> dict[str, pa.Table]:
    """The kept events (contract §4, in file order), the quarantine of every reject, and the
    counts the tables cannot show (records read, duplicates dropped) for the manifest."""
    events = prepare_events(input_path)
    counts = pa.table({"records_read": [events.records_read], "duplicates": [events.duplicates]},
                      pa.schema([("records_read", pa.int64()), ("duplicates", pa.int64())]))
    return {"kept": events.kept, "rejects": events.rejects, "counts": counts}


@step(retries=RETRIES, retry_delay_seconds=RETRY_DELAY_SECONDS)
def metrics(validated: dict[str, pa.Table], date: dt.date | None = None) -> pa.Table:
    """Contract §5: one row per (event_date, country, event_type), of `date` if one is named."""
    return daily_metrics(rows_in_window(validated["kept"], date))


@step
def rejects(validated: dict[str, pa.Table]) -> pa.Table:
    return validated["rejects"]


def counted(validated: dict[str, pa.Table], metrics: pa.Table, input_path: str,
            date: dt.date | None = None) -> dict:  # fmt: skip
    """Contract §6's counts and their reconciliation, in the manifest of every run."""
    kept, counts = validated["kept"], validated["counts"].to_pylist()[0]
    out_of_window = kept.num_rows - rows_in_window(kept, date).num_rows
    return reconciled_counts(input_path, counts["records_read"], kept.num_rows,
                             rejected_by_reason(validated["rejects"]), counts["duplicates"],
                             out_of_window, metrics.num_rows)  # fmt: skip


pipeline = Pipeline(
    "events_daily_metrics",
    steps=[validated, metrics, rejects],
    outputs=[Output("metrics", key=METRICS_KEY), Output("rejects", key=["source_row"])],
    partition="date",
    sample={"input_path": "data/synthetic_events.csv"},  # `make data`, from the project's root
    sample_dates=("2024-01-01", "2024-01-07"),
    manifest=counted,
)
