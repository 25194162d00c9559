"""What every conformance module shares: the built environments, the wrapper under test, and
the reference runner's outputs (the truth), each made once per session."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.runs import BACKFILL, LARGE_BACKFILL_DATES, SAMPLE_DATES, stop_marked
from tests.conformance.wrappers import WRAPPERS, Wrapper
from tests.conftest import PROJECT, SAMPLE, make, run_reference

# A large input: long enough to kill a run inside its validated or its metrics step.
LARGE_ROWS = 300_000


@pytest.fixture(autouse=True)
def nothing_left_running() -> Iterator[None]:
    """After each test, passed or failed, stop what it started that is still running (all of
    it carries tests.conftest.SESSION_MARK); the tests assert that nothing was
    (runs.no_survivors)."""
    yield
    stop_marked()


@pytest.fixture(scope="session", autouse=True)
def environments_built() -> None:
    """`make setup` first, with the real $HOME: a stale stamp would make the first wrapper
    run rebuild its environment, and uv would fill the test's empty $HOME with its cache."""
    result = make("setup")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module", params=WRAPPERS, ids=[wrapper.name for wrapper in WRAPPERS])
def wrapper(request) -> Wrapper:
    wrapper: Wrapper = request.param
    if not wrapper.exists:
        pytest.skip(f"{wrapper.name} wrapper not built yet (issue {wrapper.issue})")
    return wrapper


def _generate(output: Path, rows: int, seed: int, start: str, days: int) -> Path:
    subprocess.run(
        [sys.executable, "-m", "shared_etl.generate", "--rows", str(rows), "--seed", str(seed),
         "--start", start, "--days", str(days), "--output", str(output)],
        check=True, cwd=PROJECT, capture_output=True,
    )  # fmt: skip
    return output


def _reference(source: Path, *arguments: str) -> None:
    result = run_reference("--input-path", str(source), *arguments)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="session")
def truth(tmp_path_factory) -> Path:
    """The reference runner's outputs: the sample, other input, one date, every backfill date."""
    folder = tmp_path_factory.mktemp("truth")
    other = _generate(folder / "other_events.csv", 800, 5, "2024-02-10", 3)
    _reference(SAMPLE, "--output-path", str(folder / "sample.parquet"))
    _reference(other, "--output-path", str(folder / "other.parquet"))
    _reference(SAMPLE, "--output-path", str(folder / "one-day.parquet"), "--date", "2024-01-03")
    _reference(SAMPLE, "--start", BACKFILL[0], "--end", BACKFILL[1], "--output-dir", str(folder))
    return folder


@pytest.fixture(scope="session")
def large_truth(tmp_path_factory) -> Path:
    """A large generated input (`events.csv`) and the reference outputs on it: the whole run
    (`all.parquet`) and each date of LARGE_BACKFILL_DATES (`<date>.parquet`)."""
    folder = tmp_path_factory.mktemp("large")
    source = _generate(folder / "events.csv", LARGE_ROWS, 11, BACKFILL[0], len(SAMPLE_DATES))
    _reference(source, "--output-path", str(folder / "all.parquet"))
    start, end = LARGE_BACKFILL_DATES[0], LARGE_BACKFILL_DATES[-1]
    _reference(source, "--start", start, "--end", end, "--output-dir", str(folder))
    return folder
