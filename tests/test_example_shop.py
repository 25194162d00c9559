"""The repository's pandas example, examples/shop/shop.py: what the reference runner publishes
for its committed sample is the join worked out here independently, in plain Python over the
two CSV files (csv and Decimal, no pandas, none of the pipeline's steps); its golden file is
those bytes; a bad catalog or order is one line naming the step and the file."""

import csv
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from parity.registry import ORCHESTRATORS
from tests.conftest import PROJECT, make

SHOP = PROJECT / "examples" / "shop"
PIPELINE = f"PIPELINE={SHOP / 'shop.py'}"
DATES = ("2024-03-01", "2024-03-02", "2024-03-03")
SALES_COLUMNS = ["orders", "units", "revenue", "avg_unit_price"]


def records(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def sales(lines: Iterable[dict[str, str]]) -> dict[str, object]:
    """Orders, units, revenue to the cent (exact decimal sum, then the nearest float) and the
    revenue per unit (None when no unit was sold)."""
    lines = list(lines)
    units = sum(int(line["quantity"]) for line in lines)
    exact = sum((int(line["quantity"]) * Decimal(line["unit_price"]) for line in lines),
                Decimal(0))  # fmt: skip
    revenue = float(exact.quantize(Decimal("0.01")))
    return {"orders": len(lines), "units": units, "revenue": revenue,
            "avg_unit_price": revenue / units if units else None}  # fmt: skip


def expected(day: str | None) -> dict[str, list[dict[str, object]]]:
    """Both outputs of a run over every order (day None) or over one date's, sorted by key."""
    catalog = {product["product_id"]: product for product in records(SHOP / "products.csv")}
    by_category: dict[tuple[str, str], list[dict[str, str]]] = {}
    by_product: dict[str, list[dict[str, str]]] = {product: [] for product in catalog}
    for line in records(SHOP / "orders.csv"):
        if day not in (None, line["order_date"]):
            continue
        product = catalog.get(line["product_id"], {"category": "unknown"})
        by_category.setdefault((line["order_date"], product["category"]), []).append(line)
        by_product.get(line["product_id"], []).append(line)
    return {
        "category_sales": [{"order_date": order_date, "category": category, **sales(lines)}
                           for (order_date, category), lines in sorted(by_category.items())],
        "product_sales": [{**catalog[product], **sales(lines)}
                          for product, lines in sorted(by_product.items())],
    }  # fmt: skip


def published(folder: Path) -> dict[str, list[dict[str, object]]]:
    tables = {name: pq.read_table(folder / f"{name}.parquet") for name in expected(None)}
    return {name: table.to_pylist() for name, table in tables.items()}


def test_the_sample_reaches_both_unmatched_sides_of_the_join():
    """Orders of products the catalog lacks, and a product nobody ordered, or one date's."""
    catalog = {product["product_id"] for product in records(SHOP / "products.csv")}
    orders = records(SHOP / "orders.csv")
    assert sum(order["product_id"] not in catalog for order in orders) >= 2
    assert catalog - {order["product_id"] for order in orders}
    for day in DATES:
        assert catalog - {order["product_id"] for order in orders if order["order_date"] == day}


def test_the_sample_run_publishes_the_join_worked_out_from_the_csv_files(tmp_path):
    result = make("reference", PIPELINE, f"OUTPUT_DIR={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert published(tmp_path) == expected(None)
    assert pq.read_table(tmp_path / "category_sales.parquet").column_names == [
        "order_date", "category", *SALES_COLUMNS]  # fmt: skip
    assert pq.read_table(tmp_path / "product_sales.parquet").column_names == [
        "product_id", "name", "category", *SALES_COLUMNS]  # fmt: skip


def test_each_date_of_the_backfill_joins_only_that_dates_orders(tmp_path):
    result = make("backfill-reference", PIPELINE, f"START={DATES[0]}", f"END={DATES[-1]}",
                  f"OUTPUT_DIR={tmp_path}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    for day in DATES:
        assert published(tmp_path / "reference" / day) == expected(day), day


@pytest.mark.orchestrators
def test_every_wrapper_gives_the_committed_golden_files_bytes(tmp_path):
    """CI's parity gate for the example (`make all PIPELINE=`): its run and backfill under
    every wrapper, against each other and against the golden file (the verdict names the
    reference runner, then the orchestrators in alphabetical order)."""
    golden = json.loads((SHOP / "shop.golden.json").read_text())
    assert sorted(golden) == sorted(
        [f"run/{name}" for name in expected(None)]
        + [f"backfill/{day}/{name}" for day in DATES for name in expected(None)]
    )
    result = make("all", PIPELINE, f"OUTPUT_ROOT={tmp_path}")
    assert result.returncode == 0, result.stdout + result.stderr
    across = ", ".join(["reference", *sorted(ORCHESTRATORS)])
    assert result.stdout.splitlines()[-1] == (
        f"VERDICT: IDENTICAL: 8 outputs, byte for byte, across {across}"
    )


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("products", "product_id,name,category\np1,Mug,equipment\np1,Cup,equipment\n",
         "error: step 'products': {path}: product_id 'p1' is listed twice"),
        ("orders", "order_id,order_date,product_id,quantity,unit_price\n"
                   "o1,2024-03-01,p01,2,1.50\no2,2024-03-01,p01,1.5,1.50\n",
         "error: step 'orders': {path}: record 2: quantity '1.5' is not a whole number >= 0"),
        ("orders", "order_id,order_date,product_id,quantity,unit_price\n"
                   "o1,2024-03-01,p01,2,-1\n",
         "error: step 'orders': {path}: record 1: unit_price '-1' is not a number >= 0"),
        ("orders", "order_id,order_date,product_id,quantity\no1,2024-03-01,p01,2\n",
         "error: step 'orders': {path}: missing column(s) unit_price"),
    ],
    ids=["repeated_product", "fractional_quantity", "negative_price", "missing_column"],
)  # fmt: skip
def test_a_bad_input_file_is_one_line_naming_the_step_and_the_file(tmp_path, name, text, line):
    files = {"orders": SHOP / "orders.csv", "products": SHOP / "products.csv"}
    files[name] = tmp_path / f"{name}.csv"
    files[name].write_text(text)
    params = json.dumps({f"{key}_csv": str(path) for key, path in files.items()})
    result = make("reference", PIPELINE, f"PARAMS={params}", f"OUTPUT_DIR={tmp_path / 'out'}")
    assert result.returncode == 2
    assert line.format(path=files[name]) in result.stderr.splitlines()
    assert not (tmp_path / "out" / "category_sales.parquet").exists()
