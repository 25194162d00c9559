from datetime import date

import pandas as pd
from parity import InputError, Output, Pipeline, step


@step
def orders(orders_csv: str) -> pd.DataFrame:
    table = pd.read_csv(orders_csv, dtype=str, keep_default_na=False)
    if "amount" not in table.columns:
        raise InputError(f"{orders_csv}: no amount column")
    return table


@step(retries=2, retry_delay_seconds=1)
def daily_revenue(orders: pd.DataFrame, date: date | None = None, min_amount: int = 0) -> pd.DataFrame:
    table = orders.assign(amount=orders["amount"].astype("int64"))
    table = table[table["amount"] >= min_amount]
    if date is not None:
        table = table[table["order_date"] == date.isoformat()]
    return table.groupby(["order_date", "customer_id"], as_index=False)["amount"].sum()


pipeline = Pipeline(
    "orders",
    steps=[orders, daily_revenue],
    outputs=[Output("daily_revenue", key=["order_date", "customer_id"])],
    partition="date",
    sample={"orders_csv": "orders.csv"},
    sample_dates=("2024-01-01", "2024-01-03"),
)
