"""Contract §9, runs side by side: two runs of one wrapper at once, in one checkout, on different
inputs and outputs, each give exactly its own reference output and leave nothing running."""

from pathlib import Path

import pytest

from tests.conformance.runs import SAMPLE_DATES, no_survivors, started_make
from tests.conformance.wrappers import Wrapper
from tests.conftest import SAMPLE, assert_same_parquet

pytestmark = pytest.mark.orchestrators

def test_two_runs_at_once_on_different_inputs_each_write_their_own_reference(
    wrapper: Wrapper, truth: Path, tmp_path: Path
):
    jobs = {
        "sample": (SAMPLE, truth / "sample.parquet"),
        "other": (truth / "other_events.csv", truth / "other.parquet"),
    }
    outputs = {name: tmp_path / name / f"{name}.parquet" for name in jobs}
    logs = tmp_path / "logs"
    with (
        started_make(logs, wrapper.name, f"INPUT={jobs['sample'][0]}",
                     f"OUTPUT={outputs['sample']}") as first,
        started_make(logs, wrapper.name, f"INPUT={jobs['other'][0]}",
                     f"OUTPUT={outputs['other']}") as second,
    ):  # fmt: skip
        results = {"sample": first.wait(), "other": second.wait()}
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
    for name, (_, expected) in jobs.items():
        assert_same_parquet(outputs[name], expected)
    assert no_survivors(wrapper.name) == [], "the runs left processes running"


def test_two_backfills_at_once_into_different_folders_each_write_their_own_dates(
    wrapper: Wrapper, truth: Path, tmp_path: Path
):
    ranges = {"early": SAMPLE_DATES[0:3], "late": SAMPLE_DATES[2:5]}  # one date in both
    folders = {name: tmp_path / name for name in ranges}
    logs = tmp_path / "logs"

    def backfill(name: str):
        dates = ranges[name]
        return started_make(logs, f"backfill-{wrapper.name}", f"START={dates[0]}",
                            f"END={dates[-1]}", f"OUTPUT_DIR={folders[name]}")  # fmt: skip

    with backfill("early") as early, backfill("late") as late:
        results = {"early": early.wait(), "late": late.wait()}
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
    for name, dates in ranges.items():
        written = folders[name] / wrapper.name
        assert sorted(path.name for path in written.glob("*.parquet")) == sorted(
            f"{day}{suffix}" for day in dates for suffix in (".parquet", ".rejects.parquet")
        ), f"{name} wrote other dates than its own"
        for day in dates:
            assert_same_parquet(written / f"{day}.parquet", truth / f"{day}.parquet")
    assert no_survivors(wrapper.name) == [], "the backfills left processes running"


def test_a_backfill_beside_a_run_each_write_their_own_reference(
    wrapper: Wrapper, truth: Path, tmp_path: Path
):
    output, folder = tmp_path / "run" / "other.parquet", tmp_path / "backfill"
    dates = SAMPLE_DATES[:3]
    logs = tmp_path / "logs"
    with (
        started_make(logs, wrapper.name, f"INPUT={truth / 'other_events.csv'}",
                     f"OUTPUT={output}") as run,
        started_make(logs, f"backfill-{wrapper.name}", f"START={dates[0]}",
                     f"END={dates[-1]}", f"OUTPUT_DIR={folder}") as backfill,
    ):  # fmt: skip
        results = {"run": run.wait(), "backfill": backfill.wait()}
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
    assert_same_parquet(output, truth / "other.parquet")
    for day in dates:
        assert_same_parquet(folder / wrapper.name / f"{day}.parquet", truth / f"{day}.parquet")
    assert no_survivors(wrapper.name) == [], "the runs left processes running"
