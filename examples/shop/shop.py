"""shop: a shop's orders joined to its product catalog, per day, in pandas (docs/own-pipeline.md).

Two inputs, `orders.csv` (one row per order: a product, a quantity, the unit price paid) and
`products.csv` (the catalog: a name and a category per product), joined on `product_id`, and
two outputs:

- `category_sales`, one row per (order_date, category): orders, units, revenue and the average
  unit price. An order whose product is not in the catalog is kept, in category "unknown",
  so the revenue adds up to the orders' whatever the catalog lacks.
- `product_sales`, one row per product of the catalog: its sales in the run's orders. A
  product nobody ordered has 0 orders, 0 units, revenue 0.0 and no average price (null).

`date` is the daily partition: a backfill's run for one date joins only that date's orders.
Revenue is rounded to cents; the average unit price is revenue / units, unrounded.

    make all PIPELINE=examples/shop/shop.py       the four wrappers against shop.golden.json
"""

import math
from datetime import date

import pandas as pd

from parity import InputError, Output, Pipeline, step

ORDER_COLUMNS = ("order_id", "order_date", "product_id", "quantity", "unit_price")
PRODUCT_COLUMNS = ("product_id", "name", "category")
UNKNOWN = "unknown"  # the category of an order whose product the catalog lacks
SALES = {"orders": ("order_id", "count"), "units": ("quantity", "sum"),
         "revenue": ("revenue", "sum")}  # fmt: skip


def read_text(path: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read as text: the parsing rules are the pipeline's, not the CSV reader's guesses."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def non_negative(table: pd.DataFrame, column: str, path: str, whole: bool) -> pd.Series:
    """`column` as numbers >= 0 (int64 when `whole`), or one line naming the first that is not."""
    values = pd.to_numeric(table[column], errors="coerce")
    bad = ~values.between(0, math.inf, inclusive="left")
    if whole:
        bad |= values % 1 != 0
    if bad.any():
        record = int(bad.to_numpy().argmax())
        kind = "a whole number" if whole else "a number"
        raise InputError(f"{path}: record {record + 1}: {column} "
                         f"{table[column].iloc[record]!r} is not {kind} >= 0")  # fmt: skip
    return values.astype("int64" if whole else "float64")


@step
def orders(orders_csv: str) -> pd.DataFrame:
    table = read_text(orders_csv, ORDER_COLUMNS)
    return table.assign(
        quantity=non_negative(table, "quantity", orders_csv, whole=True),
        unit_price=non_negative(table, "unit_price", orders_csv, whole=False),
    )


@step
def products(products_csv: str) -> pd.DataFrame:
    """The catalog; a product listed twice would count its orders twice, so it is refused."""
    table = read_text(products_csv, PRODUCT_COLUMNS)
    repeated = table["product_id"][table["product_id"].duplicated()]
    if not repeated.empty:
        raise InputError(f"{products_csv}: product_id {repeated.iloc[0]!r} is listed twice")
    return table[list(PRODUCT_COLUMNS)]


@step(retries=2, retry_delay_seconds=1)
def order_lines(
    orders: pd.DataFrame, products: pd.DataFrame, date: date | None = None
) -> pd.DataFrame:
    """Each order of the run (of `date` in a backfill) with its product's name and category:
    a left join, so an order of a product the catalog lacks stays, in category "unknown"."""
    if date is not None:
        orders = orders[orders["order_date"] == date.isoformat()]
    lines = orders.merge(products, on="product_id", how="left", validate="many_to_one")
    return lines.assign(
        category=lines["category"].fillna(UNKNOWN),
        revenue=lines["quantity"] * lines["unit_price"],
    )


@step
def category_sales(order_lines: pd.DataFrame) -> pd.DataFrame:
    table = order_lines.groupby(["order_date", "category"], as_index=False).agg(**SALES)
    return with_prices(table)


@step
def product_sales(order_lines: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Every product of the catalog, ordered or not: the join's other unmatched side."""
    sold = order_lines.groupby("product_id", as_index=False).agg(**SALES)
    table = products.merge(sold, on="product_id", how="left", validate="one_to_one")
    table = table.fillna({"orders": 0, "units": 0, "revenue": 0.0})
    return with_prices(table.astype({"orders": "int64", "units": "int64"}))


def with_prices(table: pd.DataFrame) -> pd.DataFrame:
    """Revenue in cents, and the average unit price (null where no unit was sold)."""
    revenue = table["revenue"].round(2)
    units = table["units"].where(table["units"] > 0)
    return table.assign(revenue=revenue, avg_unit_price=revenue / units)


pipeline = Pipeline(
    "shop",
    steps=[orders, products, order_lines, category_sales, product_sales],
    outputs=[
        Output("category_sales", key=["order_date", "category"]),
        Output("product_sales", key=["product_id"]),
    ],
    partition="date",
    sample={"orders_csv": "orders.csv", "products_csv": "products.csv"},
    sample_dates=("2024-03-01", "2024-03-03"),
)
