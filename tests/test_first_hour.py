"""The first hour of a new user, through `make` as they run it (issue 22): a broken input ends
in a few lines that give the reason, and a retry shows as one line naming the step and the
attempt. The messages are the contract's (docs/contract.md §1, §8), not copied from the code."""

import re
from pathlib import Path

import pytest

from parity.registry import ORCHESTRATORS, WRAPPERS
from tests.conftest import make

pytestmark = pytest.mark.orchestrators

# make's echo of the recipe (3 lines), at most 4 of the wrapper's own (the run's start, the
# failed step, the run's end, where the full log is), the one-line reason, and make's own
# `make: ***` line.
MOST_LINES_PER_FAILURE = 9


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_a_bad_input_ends_in_a_few_lines_with_its_reason(wrapper: str, tmp_path: Path) -> None:
    """§1: a missing required column stops the run with a message naming the step and the
    file; §8: one line on stderr, a non-zero status. The traceback is in the full log, not on
    the console."""
    bad = tmp_path / "bad.csv"
    bad.write_text("id,when\n1,2024-01-01\n", encoding="utf-8")
    result = make(wrapper, f"INPUT={bad}", f"OUTPUT={tmp_path / 'out.parquet'}")
    lines = (result.stdout + result.stderr).splitlines()
    reason = result.stderr.splitlines()[-2]  # the last is make's own
    assert result.returncode != 0
    assert reason.startswith(f"error: step 'validated': {bad}: ") and "column" in reason, reason
    assert "Traceback" not in result.stdout + result.stderr
    assert len(lines) <= MOST_LINES_PER_FAILURE, "\n".join(lines)


def retry_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.search(r"\bretry\b", line, re.IGNORECASE)]


def assert_one_retry_line_per_retry(lines: list[str], retries: int) -> None:
    """§8: each retry is one line giving the step, the attempt, the reason (the injected
    transient error) and the delay (one second, the events pipeline's retry policy)."""
    assert len(lines) == retries, "\n".join(lines)
    for line in lines:
        assert "metrics" in line, line
        assert re.search(r"attempt 1\b|Retry 1/", line), line
        assert "TransientStepError" in line and "injected transient failure" in line, line
        assert re.search(r"next attempt in 1 s|will start 1(\.0)? second", line), line


@pytest.mark.parametrize("wrapper", ORCHESTRATORS)
def test_each_retry_shows_as_one_line_with_its_step_and_attempt(
    wrapper: str, tmp_path: Path
) -> None:
    """§8: ETL_FAIL_ATTEMPTS=1 fails the metrics step's first attempt; the orchestrator's
    retry runs it again, and the console says so once."""
    result = make(wrapper, f"OUTPUT={tmp_path / 'out.parquet'}", env={"ETL_FAIL_ATTEMPTS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert_one_retry_line_per_retry(retry_lines(result.stdout + result.stderr), 1)


def backfill(wrapper: str, output_dir: Path, fail_attempts: str = "0") -> str:
    result = make(f"backfill-{wrapper}", "START=2024-01-02", "END=2024-01-03",
                  f"OUTPUT_DIR={output_dir}", env={"ETL_FAIL_ATTEMPTS": fail_attempts})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.mark.parametrize("wrapper", [name for name in ORCHESTRATORS if name != "airflow"])
def test_each_retry_of_a_backfill_shows_on_the_console(wrapper: str, tmp_path: Path) -> None:
    """§8: in a backfill the step fails its first attempt on each date; each retry is one line
    on the console (Airflow's: the next test)."""
    assert_one_retry_line_per_retry(retry_lines(backfill(wrapper, tmp_path, "1")), 2)


def test_each_retry_of_an_airflow_backfill_shows_and_only_its_own(tmp_path: Path) -> None:
    """§8 for Airflow, whose backfill's tasks run in the scheduler's processes: each retry is
    one line on the console. A date backfilled again is reprocessed in the same DAG run,
    whose task instances count their tries on (3, 4, ...) beside the earlier tries' logs: the
    console shows only this backfill's retries, and the injected fault still fails this
    backfill's first try of each date."""
    assert_one_retry_line_per_retry(retry_lines(backfill("airflow", tmp_path / "first", "1")), 2)
    assert retry_lines(backfill("airflow", tmp_path / "without")) == []
    assert_one_retry_line_per_retry(retry_lines(backfill("airflow", tmp_path / "again", "1")), 2)
