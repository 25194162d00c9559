"""Contract §8 to §10 for declared pipelines, under every orchestrator's adapter: three different
pipelines side by side, a key that repeats, and a killed run. The pipelines are the events
pipeline declared (shared_etl/pipeline.py), the pandas example (examples/shop, in the
repository, with its golden file) and ones a user keeps in a folder of their own outside it
(the orders example copied there, and small ones written here). The bytes each run must
give are its golden file's, or the reference runner's."""

import hashlib
import json
import shutil
from contextlib import ExitStack
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from parity.registry import ORCHESTRATORS
from tests.conformance.runs import error_lines, no_survivors, started_make, wait_until
from tests.conftest import ORDERS, PROJECT, make

pytestmark = pytest.mark.orchestrators

SHOP = PROJECT / "examples" / "shop"
REPEATED_KEY = """
import pandas as pd
from parity import Output, Pipeline, step


@step
def totals() -> pd.DataFrame:
    return pd.DataFrame({"k": [1, 1, 2], "v": [1.0, 2.0, 3.0]})


pipeline = Pipeline("repeats", steps=[totals], outputs=[Output("totals", key=["k"])])
"""
# A first step that says it started, then holds for `hold` seconds: a run to kill mid-way.
HELD = """
import pathlib, time
import pandas as pd
from parity import Output, Pipeline, step


@step
def source(signal: str, hold: float = 0.0) -> pd.DataFrame:
    pathlib.Path(signal).write_text("started")
    time.sleep(hold)
    return pd.DataFrame({"k": [3, 1, 2], "v": [0.5, 1.5, 2.5]})


@step
def doubled(source: pd.DataFrame) -> pd.DataFrame:
    return source.assign(v=source["v"] * 2)


pipeline = Pipeline("held", steps=[source, doubled], outputs=[Output("doubled", key=["k"])])
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(params=ORCHESTRATORS)
def orchestrator(request) -> str:
    return request.param


def test_three_pipelines_run_side_by_side_and_each_gives_its_golden_bytes(orchestrator, tmp_path):
    """The events pipeline declared, the pandas example and a user's own, all at once."""
    mine = tmp_path / "my pipelines"
    mine.mkdir()
    for name in ("orders.py", "orders.csv"):
        shutil.copy(ORDERS / name, mine / name)
    runs = {"shop": (SHOP / "shop.py", SHOP / "shop.golden.json"),
            "orders": (mine / "orders.py", ORDERS / "orders.golden.json"),
            "events": ("shared_etl.pipeline", PROJECT / "compare" / "golden.json")}  # fmt: skip
    with ExitStack() as held:
        started = {name: held.enter_context(started_make(
                       tmp_path / "logs", orchestrator, f"PIPELINE={pipeline}",
                       f"OUTPUT_DIR={tmp_path / name}"))
                   for name, (pipeline, _) in runs.items()}  # fmt: skip
        results = {name: run.wait() for name, run in started.items()}
    for name, (_, golden_file) in runs.items():
        assert results[name].returncode == 0, results[name].stderr
        golden = json.loads(golden_file.read_text())
        outputs = {key.removeprefix("run/") for key in golden if key.startswith("run/")}
        written = sorted(path.stem for path in (tmp_path / name).glob("*.parquet"))
        assert written == sorted(outputs), name
        for output in outputs:
            assert sha256(tmp_path / name / f"{output}.parquet") == golden[f"run/{output}"], output


def test_a_key_that_repeats_fails_in_one_line_and_publishes_nothing(orchestrator, tmp_path):
    (tmp_path / "repeats.py").write_text(REPEATED_KEY)
    result = make(orchestrator, f"PIPELINE={tmp_path / 'repeats.py'}",
                  f"OUTPUT_DIR={tmp_path / 'out'}")  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and lines[0].endswith(
        "output 'totals': 1 row(s) repeat a key (k) another row has; a verdict needs a grain"
    ), lines
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_killed_run_leaves_nothing_running_nor_published_and_the_next_run_is_whole(
    orchestrator, tmp_path
):
    (tmp_path / "held.py").write_text(HELD)
    signal, out = tmp_path / "started", tmp_path / "out"
    pipeline = f"PIPELINE={tmp_path / 'held.py'}"
    params = json.dumps({"signal": str(signal), "hold": 600})
    with started_make(tmp_path / "logs", orchestrator, pipeline, f"PARAMS={params}",
                      f"OUTPUT_DIR={out}") as run:  # fmt: skip
        wait_until(signal.exists, run, "the first step", 600)
        run.kill_group()
    assert no_survivors(orchestrator) == []
    assert not out.exists() or not any(out.iterdir()), sorted(out.iterdir())

    params = json.dumps({"signal": str(signal)})
    again = make(orchestrator, pipeline, f"PARAMS={params}", f"OUTPUT_DIR={out}")
    assert again.returncode == 0, again.stdout + again.stderr
    truth = make("reference", pipeline, f"PARAMS={params}", f"OUTPUT_DIR={tmp_path / 'truth'}")
    assert truth.returncode == 0, truth.stderr
    assert sorted(path.name for path in out.iterdir()) == ["doubled.parquet", "manifest.json"]
    assert sha256(out / "doubled.parquet") == sha256(tmp_path / "truth" / "doubled.parquet")
    assert pq.read_table(out / "doubled.parquet").to_pydict() == {"k": [1, 2, 3],
                                                                  "v": [3.0, 5.0, 1.0]}
