"""Contract §9, crashes: a run killed with SIGKILL (its whole process group, as a CI timeout does)
at a known point leaves the final output names as they were, nothing running, and nothing
that stops the next run, which gives the bytes of an uninterrupted run and clears every
leftover (temporaries, staging areas).

The run's point is read from its staging, which every wrapper keeps under $ETL_STAGING_ROOT
(here a folder of the test's own): an area per command, a folder per run inside it once the
run starts validating, the staged kept events (`validated.kept.arrow`) once `validated` is
done and `metrics` runs (shared_etl/pipeline.py)."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conformance.runs import LARGE_BACKFILL_DATES, no_survivors, started_make, wait_until
from tests.conformance.wrappers import Wrapper
from tests.conftest import assert_same_parquet, make, siblings

pytestmark = pytest.mark.orchestrators

REACH_TIMEOUT_SECONDS = 600


def _folders(folder: Path) -> list[Path]:
    try:
        return [path for path in folder.iterdir() if path.is_dir()]
    except FileNotFoundError:
        return []


def _validating(staging: Path) -> bool:
    """A run folder exists in an area and `validated` has not yet staged its events."""
    runs = [run for area in _folders(staging) for run in _folders(area)]
    return bool(runs) and not _computing_metrics(staging)


def _computing_metrics(staging: Path) -> bool:
    """`validated` has staged the events, which `metrics` reads (and which go with the run)."""
    try:
        return any(staging.rglob("validated.kept.arrow"))
    except FileNotFoundError:  # a folder removed while we looked
        return False


MOMENTS: dict[str, Callable[[Path], bool]] = {
    "validated": _validating,
    "metrics": _computing_metrics,
}


def _final_names(output: Path) -> list[str]:
    return sorted([*(path.name for path in siblings(output)), _manifest(output).name])


def _manifest(output: Path) -> Path:
    return output.with_name(output.name.replace(".parquet", ".manifest.json"))


def _kill_at(moment: str, staging: Path, logs: Path, *arguments: str) -> None:
    """Start `make ARGUMENTS`, SIGKILL its process group once the run is at `moment`, and
    prove the kill came while the run was still there."""
    with started_make(logs, *arguments) as run:
        wait_until(lambda: MOMENTS[moment](staging), run, f"the run at {moment}",
                   REACH_TIMEOUT_SECONDS)  # fmt: skip
        run.kill_group()
    assert MOMENTS[moment](staging), f"the run had left {moment} when it was killed"


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_run_killed_mid_way_keeps_whole_outputs_and_the_next_run_gives_the_same_bytes(
    wrapper: Wrapper, large_truth: Path, truth: Path, moment: str, tmp_path: Path
):
    staging, output = tmp_path / "staging", tmp_path / "out" / "events.parquet"
    output.parent.mkdir()
    previous = {  # a complete set from an earlier run, which the kill must not damage
        target: source.read_bytes()
        for target, source in zip(
            [*siblings(output), _manifest(output)],
            [*siblings(truth / "sample.parquet"), _manifest(truth / "sample.parquet")],
            strict=True,
        )
    }
    for target, content in previous.items():
        target.write_bytes(content)
    arguments = (wrapper.name, f"INPUT={large_truth / 'events.csv'}", f"OUTPUT={output}",
                 f"ETL_STAGING_ROOT={staging}")  # fmt: skip

    _kill_at(moment, staging, tmp_path / "logs", *arguments)

    assert no_survivors(wrapper.name) == [], "the killed run left processes running"
    new = dict(zip(siblings(output), siblings(large_truth / "all.parquet"), strict=True))
    for target, content in previous.items():
        now = target.read_bytes()
        if now != content:  # replaced: then by the complete new file, never a partial one
            if target in new:
                assert now == new[target].read_bytes(), f"{target} is neither old nor new"
            else:
                json.loads(now)

    result = make(*arguments)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_same_parquet(output, large_truth / "all.parquet")
    assert sorted(path.name for path in output.parent.iterdir()) == _final_names(output)
    assert list(staging.iterdir()) == [], "staging areas were left behind"
    assert no_survivors(wrapper.name) == [], "the run left processes running"


def test_a_backfill_killed_while_it_computes_metrics_then_run_again_gives_the_same_bytes(
    wrapper: Wrapper, large_truth: Path, tmp_path: Path
):
    staging, folder = tmp_path / "staging", tmp_path / "out"
    days = LARGE_BACKFILL_DATES
    arguments = (f"backfill-{wrapper.name}", f"INPUT={large_truth / 'events.csv'}",
                 f"START={days[0]}", f"END={days[-1]}", f"OUTPUT_DIR={folder}",
                 f"ETL_STAGING_ROOT={staging}")  # fmt: skip

    _kill_at("metrics", staging, tmp_path / "logs", *arguments)

    assert no_survivors(wrapper.name) == [], "the killed backfill left processes running"
    written = folder / wrapper.name
    for path in written.glob("*.parquet") if written.is_dir() else []:  # published so far
        assert path.read_bytes() == (large_truth / path.name).read_bytes(), f"{path} is partial"

    result = make(*arguments)
    assert result.returncode == 0, result.stdout + result.stderr
    for day in days:
        assert_same_parquet(written / f"{day}.parquet", large_truth / f"{day}.parquet")
    assert sorted(path.name for path in written.iterdir()) == sorted(
        name for day in days for name in _final_names(written / f"{day}.parquet")
    ), "leftovers in the output folder"
    assert list(staging.iterdir()) == [], "staging areas were left behind"
    assert no_survivors(wrapper.name) == [], "the backfill left processes running"
