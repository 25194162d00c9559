"""The first hour of a new user, through `make` as they run it (issue 22): a broken input ends
in a few lines that give the reason, and a retry shows as one line naming the step and the
attempt. The messages are the contract's (docs/contract.md §1, §8), not copied from the code."""

import re
from pathlib import Path

import pytest

from tests.conftest import make

pytestmark = pytest.mark.orchestrators

# make's echo of the recipe (3 lines), at most 4 of the wrapper's own (the run's start, the
# failed step, the run's end, where the full log is), the one-line reason, and make's own
# `make: ***` line.
MOST_LINES_PER_FAILURE = 9


@pytest.mark.parametrize("wrapper", ["reference", "prefect", "airflow", "dagster"])
def test_a_bad_input_ends_in_a_few_lines_with_its_reason(wrapper: str, tmp_path: Path) -> None:
    """§1: a missing required column stops the run with a message naming the file; §8: one
    line on stderr, a non-zero status. The traceback is in the full log, not on the console."""
    bad = tmp_path / "bad.csv"
    bad.write_text("id,when\n1,2024-01-01\n", encoding="utf-8")
    result = make(wrapper, f"INPUT={bad}", f"OUTPUT={tmp_path / 'out.parquet'}")
    lines = (result.stdout + result.stderr).splitlines()
    reason = result.stderr.splitlines()[-2]  # the last is make's own
    assert result.returncode != 0
    assert reason.startswith(f"error: {bad}: ") and "column" in reason, reason
    assert "Traceback" not in result.stdout + result.stderr
    assert len(lines) <= MOST_LINES_PER_FAILURE, "\n".join(lines)


@pytest.mark.parametrize("wrapper", ["prefect", "airflow", "dagster"])
def test_each_retry_shows_as_one_line_with_its_step_and_attempt(
    wrapper: str, tmp_path: Path
) -> None:
    """§8: ETL_FAIL_ATTEMPTS=1 fails the aggregate step's first attempt; the orchestrator's
    retry runs it again, and the console says so once."""
    result = make(wrapper, f"OUTPUT={tmp_path / 'out.parquet'}", env={"ETL_FAIL_ATTEMPTS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    retries = [line for line in (result.stdout + result.stderr).splitlines()
               if re.search(r"\bretry\b", line, re.IGNORECASE)]  # fmt: skip
    assert len(retries) == 1, "\n".join(retries)
    assert "aggregate" in retries[0]
    assert re.search(r"attempt 1\b|Retry 1/", retries[0]), retries[0]
