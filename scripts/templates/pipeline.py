"""$name: a pipeline declared for the orchestrator parity harness (its docs/contract.md §10).

Edit the steps; keep the declaration at the bottom. `make all PIPELINE=<this file>` runs it
under the reference runner, Prefect, Dagster and Airflow and compares their outputs with each
other and with $name.golden.json; `make bless PIPELINE=<this file>` re-records that file after
a deliberate change of the outputs.
"""

from datetime import date

import pandas as pd

from parity import InputError, Output, Pipeline, step

COLUMNS = ("sale_id", "sale_date", "region", "amount")


@step
def sales(sales_csv: str) -> pd.DataFrame:
    """Read as text: the parsing rules are the pipeline's, not the CSV reader's guesses."""
    table = pd.read_csv(sales_csv, dtype=str, keep_default_na=False)
    missing = [column for column in COLUMNS if column not in table.columns]
    if missing:
        raise InputError(f"{sales_csv}: missing column(s) {', '.join(missing)}")
    return table


@step(retries=2, retry_delay_seconds=1)
def daily_totals(
    sales: pd.DataFrame, date: date | None = None, min_amount: float = 0.0
) -> pd.DataFrame:
    """Per day and region: the number of sales and their total amount (a backfill: one date)."""
    table = sales.assign(amount=sales["amount"].astype("float64"))
    table = table[table["amount"] >= min_amount]
    if date is not None:
        table = table[table["sale_date"] == date.isoformat()]
    grouped = table.groupby(["sale_date", "region"], as_index=False)
    return grouped.agg(sales=("sale_id", "count"), amount=("amount", "sum"))


pipeline = Pipeline(
    "$name",
    steps=[sales, daily_totals],
    outputs=[Output("daily_totals", key=["sale_date", "region"])],
    partition="date",
    sample={"sales_csv": "$name.csv"},
    sample_dates=("2024-01-01", "2024-01-03"),
)
