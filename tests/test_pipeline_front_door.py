"""The front door for a pipeline of your own (docs/contract.md §10): `make <wrapper>`,
`backfill-<wrapper>`, `all`, `bless` and `compare` with PIPELINE=, here through the reference
runner; and the verdict over a pipeline's folder, keyed by the key its manifests record."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parity.files import write_parquet
from tests.conftest import make


@pytest.fixture
def pipeline(orders_folder: Path) -> Path:
    return orders_folder / "orders.py"


def test_a_run_goes_to_the_pipelines_own_folder_and_a_backfill_to_one_per_date(pipeline, tmp_path):
    root = tmp_path / "out"
    assert make("reference", f"PIPELINE={pipeline}", f"OUTPUT_ROOT={root}").returncode == 0
    result = make("backfill-reference", f"PIPELINE={pipeline}", f"OUTPUT_ROOT={root}",
                  "START=2024-01-02", "END=2024-01-03")  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = sorted(path.relative_to(root).as_posix() for path in root.rglob("*.parquet"))
    assert written == [
        "orders/backfill/reference/2024-01-02/daily_revenue.parquet",
        "orders/backfill/reference/2024-01-03/daily_revenue.parquet",
        "orders/reference/daily_revenue.parquet",
    ]


def test_params_reach_the_run_through_make(pipeline, tmp_path):
    params = json.dumps({"orders_csv": str(pipeline.with_name("orders.csv")), "min_amount": 8})
    result = make("reference", f"PIPELINE={pipeline}", f"PARAMS={params}",
                  f"OUTPUT_DIR={tmp_path / 'min8'}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = pq.read_table(tmp_path / "min8" / "daily_revenue.parquet")
    assert table["amount"].to_pylist() == [10, 30, 8, 100]  # orders.csv's sums of amounts >= 8


def test_make_all_is_red_without_a_golden_file_then_green_once_blessed(pipeline, tmp_path):
    root = tmp_path / "out"
    variables = [f"PIPELINE={pipeline}", f"OUTPUT_ROOT={root}", "EXPECT=reference"]
    red = make("all", *variables)
    assert red.returncode != 0
    assert f"{pipeline.with_name('orders.golden.json')} missing: write it with `make bless " \
           f"PIPELINE={pipeline}`" in red.stderr  # fmt: skip
    assert make("bless", f"PIPELINE={pipeline}").returncode == 0
    golden = json.loads(pipeline.with_name("orders.golden.json").read_text())
    assert sorted(golden) == ["backfill/2024-01-01/daily_revenue",
                              "backfill/2024-01-02/daily_revenue",
                              "backfill/2024-01-03/daily_revenue", "run/daily_revenue"]
    green = make("all", *variables)
    assert green.returncode == 0, green.stdout + green.stderr
    assert green.stdout.splitlines()[-1] == (
        "VERDICT: IDENTICAL: 4 outputs, byte for byte, across reference"
    )


def test_make_all_compares_what_it_wrote_not_an_earlier_runs_leftovers(pipeline, tmp_path):
    """A DATE run of one wrapper, and a wrapper not expected now, left beside make all's."""
    root = tmp_path / "out"
    assert make("bless", f"PIPELINE={pipeline}").returncode == 0
    dagster = root / "orders" / "dagster"
    unexpected = make("reference", f"PIPELINE={pipeline}", f"OUTPUT_DIR={dagster}")
    assert unexpected.returncode == 0, unexpected.stderr
    one_date = make("reference", f"PIPELINE={pipeline}", "DATE=2024-01-02", f"OUTPUT_ROOT={root}")
    assert one_date.returncode == 0, one_date.stderr
    assert (root / "orders" / "date-2024-01-02" / "reference" / "daily_revenue.parquet").exists()

    result = make("all", f"PIPELINE={pipeline}", f"OUTPUT_ROOT={root}", "EXPECT=reference")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (
        "VERDICT: IDENTICAL: 4 outputs, byte for byte, across reference"
    )
    assert (dagster / "daily_revenue.parquet").exists()  # kept


def test_a_changed_cell_is_named_by_the_key_the_manifest_records(pipeline, tmp_path):
    root = tmp_path / "out"
    for wrapper in ("reference", "dagster"):
        assert make("reference", f"PIPELINE={pipeline}",
                    f"OUTPUT_DIR={root / 'orders' / wrapper}").returncode == 0  # fmt: skip
    changed = root / "orders" / "dagster" / "daily_revenue.parquet"
    table = pq.read_table(changed)
    amounts = table["amount"].to_pylist()
    amounts[1] += 1  # (2024-01-01, c2)
    table = table.set_column(2, "amount", pa.array(amounts, table.schema.field("amount").type))
    write_parquet(table, table.schema, str(changed))
    result = make("compare", f"PIPELINE={pipeline}", f"OUTPUT_ROOT={root}",
                  "EXPECT=reference dagster")  # fmt: skip
    assert result.returncode != 0
    report = json.loads((root / "orders" / "parity-report.json").read_text())
    details = report["groups"][0]["against_baseline"]["dagster"]["details"]
    assert "rows: 5 vs 5 (keyed on order_date, customer_id)" in details
    assert any("('2024-01-01', 'c2'): 35 vs 36" in line for line in details), details


def test_the_events_verdict_leaves_a_pipelines_folder_alone(pipeline, tmp_path):
    root = tmp_path / "out"
    assert make("reference", f"PIPELINE={pipeline}", f"OUTPUT_ROOT={root}").returncode == 0
    assert make("reference", f"OUTPUT_ROOT={root}").returncode == 0
    result = make("compare", f"OUTPUT_ROOT={root}", "EXPECT=reference")
    assert "orders" not in result.stderr
    assert "run/metrics" in result.stdout
