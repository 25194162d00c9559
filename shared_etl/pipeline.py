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
from shared_etl.events import prepare_events
from shared_etl.metrics import daily_metrics, rows_in_window

# As the events wrappers: a step that failed for a reason that may pass is tried twice more.
RETRIES, RETRY_DELAY_SECONDS = 2, 1


@step(retries=RETRIES, retry_delay_seconds=RETRY_DELAY_SECONDS)
def validated(input_path: str) -> dict[str, pa.Table]:
    """The kept events (contract §4, in file order) and the quarantine of every reject."""
    events = prepare_events(input_path)
    return {"kept": events.kept, "rejects": events.rejects}


@step(retries=RETRIES, retry_delay_seconds=RETRY_DELAY_SECONDS)
def metrics(validated: dict[str, pa.Table], date: dt.date | None = None) -> pa.Table:
    """Contract §5: one row per (event_date, country, event_type), of `date` if one is named."""
    return daily_metrics(rows_in_window(validated["kept"], date))


@step
def rejects(validated: dict[str, pa.Table]) -> pa.Table:
    return validated["rejects"]


pipeline = Pipeline(
    "events_daily_metrics",
    steps=[validated, metrics, rejects],
    outputs=[Output("metrics", key=METRICS_KEY), Output("rejects", key=["source_row"])],
    partition="date",
    sample={"input_path": "data/synthetic_events.csv"},  # `make data`, from the project's root
    sample_dates=("2024-01-01", "2024-01-07"),
)
