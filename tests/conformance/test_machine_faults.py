"""Contract §9, faults of the machine, through `make` for every wrapper: the run ends non-zero with
one line naming the path and the cause, writes nothing, and no retry is made of what no retry
can cure. A fault in the output folder is found before the input is read: these runs are
given an input that does not exist, so a message about the output proves the order.

Real faults: a folder that is a file, a read-only tmpfs, a full tmpfs (mounting needs root;
without it those cases are skipped)."""

import subprocess
from pathlib import Path

import pytest

from tests.conformance.runs import error_lines
from tests.conformance.wrappers import Wrapper
from tests.conftest import SAMPLE, make

pytestmark = pytest.mark.orchestrators

def _one_line(result: subprocess.CompletedProcess, path: Path, cause: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and cause in lines[0], lines[0]


def test_an_output_folder_that_is_a_file_is_named_before_the_input_is_read(
    wrapper: Wrapper, tmp_path: Path
):
    blocker = tmp_path / "reports"
    blocker.write_text("not a folder")
    result = make(wrapper.name, f"INPUT={tmp_path / 'absent.csv'}",
                  f"OUTPUT={blocker / 'events.parquet'}")  # fmt: skip
    _one_line(result, blocker, "is a file")
    assert blocker.read_text() == "not a folder"


def test_a_backfill_into_a_file_is_named_before_the_input_is_read(wrapper: Wrapper, tmp_path: Path):
    blocker = tmp_path / "backfill"
    blocker.write_text("")
    result = make(f"backfill-{wrapper.name}", f"INPUT={tmp_path / 'absent.csv'}",
                  "START=2024-01-01", "END=2024-01-02", f"OUTPUT_DIR={blocker}")  # fmt: skip
    _one_line(result, blocker, "Not a directory")
    assert blocker.read_text() == ""


def test_a_read_only_output_folder_is_named_before_the_input_is_read(wrapper: Wrapper, mount):
    folder = mount("1m", "ro")
    result = make(wrapper.name, f"INPUT={folder.parent / 'absent.csv'}",
                  f"OUTPUT={folder / 'events.parquet'}")  # fmt: skip
    _one_line(result, folder, "Read-only file system")


def test_a_full_disk_fails_once_with_one_line_and_leaves_nothing(wrapper: Wrapper, mount):
    folder = mount("12k")
    output = folder / "events.parquet"
    result = make(wrapper.name, f"INPUT={SAMPLE}", f"OUTPUT={output}")
    _one_line(result, folder, "No space left on device")
    assert list(folder.iterdir()) == [], "a temporary or partial file was left behind"
    if wrapper.recorded_attempts is not None:
        assert wrapper.recorded_attempts(output) == 1, "a machine fault was retried"
