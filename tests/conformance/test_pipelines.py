"""Contract §10's conformance, parametrised over pipelines, under every orchestrator's adapter:
the events pipeline declared (shared_etl/pipeline.py), the pandas example (examples/shop) and a
user's pipeline in a folder of their own outside the repository (the orders example copied
there). Each must give its golden file's bytes for one date's run (the events pipeline's in
the file layout, at contract §6's names: parity.layout) and for a backfill whose
dated step fails once (so the orchestrator's own retry is exercised on every date), and must
refuse a bad input file in one line naming the step, exit 2, publishing nothing."""

import datetime as dt
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from parity.registry import ORCHESTRATORS
from tests.conformance.runs import error_lines
from tests.conftest import ORDERS, PROJECT, make

pytestmark = pytest.mark.orchestrators


@dataclass(frozen=True)
class Case:
    pipeline: str  # PIPELINE= as a user gives it; "{mine}" is the user's own folder
    golden: Path
    dates: tuple[str, str]  # a backfill's three dates, of those its golden file holds
    retried: str  # a step that reads the date, has retries, and is made to fail once
    bad_input: tuple[str, str, str]  # (parameter, file text, the error line's end)
    # The date run's files by output, in the file layout (parity.layout) with OUTPUT_DIR
    # the first of them; None: a folder of `<output>.parquet`.
    date_files: dict[str, str] | None = None


CASES = {
    "events": Case(
        "shared_etl.pipeline", PROJECT / "compare" / "golden.json", ("2024-01-01", "2024-01-03"),
        "metrics", ("input_path", "a,b\n1,2\n", "required column(s) missing from the header: "
                    "event_id, event_ts, user_id, session_id, event_type, amount, currency, "
                    "country"),
        # contract §6's names for the events pipeline's own files
        date_files={"metrics": "events.parquet", "rejects": "events.rejects.parquet"},
    ),
    "shop": Case(
        str(PROJECT / "examples" / "shop" / "shop.py"),
        PROJECT / "examples" / "shop" / "shop.golden.json", ("2024-03-01", "2024-03-03"),
        "order_lines", ("orders_csv", "order_id,order_date,product_id,quantity\n"
                        "o1,2024-03-01,p01,2\n", "missing column(s) unit_price"),
    ),
    "mine": Case(
        "{mine}/orders.py", ORDERS / "orders.golden.json", ("2024-01-01", "2024-01-03"),
        "daily_revenue", ("orders_csv", "order_id,order_date\n", "no amount column"),
    ),
}  # fmt: skip
# The step a bad input fails in: the first one, which reads the file.
FIRST_STEP = {"events": "validated", "shop": "orders", "mine": "orders"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(params=ORCHESTRATORS)
def orchestrator(request) -> str:
    return request.param


@pytest.fixture(params=sorted(CASES))
def case(request, tmp_path) -> tuple[str, Case, str]:
    """(name, case, PIPELINE=): the user's own pipeline is copied to a folder of theirs."""
    mine = tmp_path / "my pipelines"
    mine.mkdir()
    for name in ("orders.py", "orders.csv"):
        shutil.copy(ORDERS / name, mine / name)
    chosen = CASES[request.param]
    return request.param, chosen, f"PIPELINE={chosen.pipeline.format(mine=mine)}"


def test_a_date_and_a_retried_backfill_give_the_golden_bytes(case, orchestrator, tmp_path):
    _, chosen, pipeline = case
    golden = json.loads(chosen.golden.read_text())
    first, last = chosen.dates
    outputs = sorted(key.split("/")[-1] for key in golden if key.startswith("run/"))
    files = chosen.date_files or {name: f"{name}.parquet" for name in outputs}
    where = tmp_path / "date" / files[outputs[0]] if chosen.date_files else tmp_path / "date"
    one = make(orchestrator, pipeline, f"DATE={first}", f"OUTPUT_DIR={where}")
    assert one.returncode == 0, one.stdout + one.stderr
    published = sorted(path.name for path in (tmp_path / "date").glob("*.parquet"))
    assert published == sorted(files.values())
    for name in outputs:
        got = sha256(tmp_path / "date" / files[name])
        assert got == golden[f"backfill/{first}/{name}"], name
    if chosen.date_files:  # its manifest beside them, with the pipeline's own counts
        manifest = json.loads((tmp_path / "date" / "events.manifest.json").read_text())
        assert manifest["counts"]["records_read"] == 5000  # the sample's --rows (Makefile)
        assert manifest["reconciliation"]["holds"] is True

    faults = {"PARITY_FAIL_STEP": chosen.retried, "PARITY_FAIL_ATTEMPTS": "1"}
    backfill = make(f"backfill-{orchestrator}", pipeline, f"START={first}", f"END={last}",
                    f"OUTPUT_DIR={tmp_path / 'backfill'}", env=faults)  # fmt: skip
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr
    days = sorted(path.name for path in (tmp_path / "backfill" / orchestrator).iterdir())
    start = dt.date.fromisoformat(first)
    assert days == [(start + dt.timedelta(days=n)).isoformat() for n in range(3)]
    for day in days:
        folder = tmp_path / "backfill" / orchestrator / day
        for name in outputs:
            assert sha256(folder / f"{name}.parquet") == golden[f"backfill/{day}/{name}"], day
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["attempts"][chosen.retried] == 2, (day, manifest["attempts"])


def test_a_bad_input_file_is_one_line_naming_the_step_exit_2(case, orchestrator, tmp_path):
    name, chosen, pipeline = case
    parameter, text, end = chosen.bad_input
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    sample = {"shop": {"products_csv": str(PROJECT / "examples" / "shop" / "products.csv")}}
    params = json.dumps({**sample.get(name, {}), parameter: str(bad)})
    result = make(orchestrator, pipeline, f"PARAMS={params}", f"OUTPUT_DIR={tmp_path / 'out'}")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: step '{FIRST_STEP[name]}': {bad}"), lines
    assert lines[0].endswith(end), lines
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
