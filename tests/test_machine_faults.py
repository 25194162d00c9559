"""Contract §9: faults of the machine end a run with one line naming the path and the cause.

Real faults, not mocks: a full tmpfs, a read-only tmpfs, a folder the user may not write, an
output folder that is a file. Mounting needs root; without it those cases are skipped.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import PROJECT, SAMPLE, run_reference


def _one_line_error(result: subprocess.CompletedProcess, path: Path, cause: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and cause in lines[0], lines[0]


def test_a_full_disk_fails_the_run_with_one_line_and_leaves_nothing(mount):
    folder = mount("12k")
    result = run_reference("--input-path", str(SAMPLE), "--output-path", str(folder / "x.parquet"))
    assert result.returncode == 1
    _one_line_error(result, folder, "No space left on device")
    assert list(folder.iterdir()) == [], "a temporary or partial file was left behind"


def test_a_read_only_output_folder_fails_before_the_input_is_read(mount):
    folder = mount("1m", "ro")
    result = run_reference("--input-path", str(SAMPLE), "--output-path", str(folder / "x.parquet"))
    assert result.returncode == 1
    _one_line_error(result, folder, "Read-only file system")
    assert "prepared" not in result.stdout, "the input was read before the output was checked"


def test_an_output_folder_that_is_a_file_is_named(tmp_path):
    blocker = tmp_path / "reports"
    blocker.write_text("not a folder")
    result = run_reference(
        "--input-path", str(SAMPLE), "--output-path", str(blocker / "x.parquet")
    )  # fmt: skip
    assert result.returncode == 1
    _one_line_error(result, blocker, "is a file")
    assert blocker.read_text() == "not a folder"


def test_a_backfill_into_a_file_fails_before_the_input_is_read(tmp_path):
    blocker = tmp_path / "backfill"
    blocker.write_text("")
    result = run_reference(
        "--input-path", str(SAMPLE), "--start", "2024-01-01", "--end", "2024-01-02",
        "--output-dir", str(blocker),
    )  # fmt: skip
    assert result.returncode == 1
    _one_line_error(result, blocker, "is a file")
    assert "prepared" not in result.stdout


def test_permission_denied_is_named(tmp_path):
    """As nobody when run by root (root ignores modes), in a folder nobody can reach."""
    if os.geteuid() != 0:
        base, prefix = tmp_path, []
    else:
        base = Path(tempfile.mkdtemp(prefix="etl-perm-"))
        base.chmod(0o755)
        (base / "staging").mkdir()
        os.chown(base / "staging", 65534, 65534)
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    folder = base / "locked"
    folder.mkdir(mode=0o555)
    try:
        result = subprocess.run(
            [*prefix, sys.executable, "-m", "parity", "--input-path", str(SAMPLE),
             "--output-path", str(folder / "x.parquet")],
            capture_output=True, text=True, cwd=PROJECT, check=False,
            env={**os.environ, "ETL_STAGING_ROOT": str(base / "staging")},
        )  # fmt: skip
    finally:
        if base != tmp_path:
            shutil.rmtree(base)
    assert result.returncode == 1, result.stderr
    _one_line_error(result, folder, "Permission denied")


@pytest.mark.parametrize(
    ("output", "cause"),
    [("out/.parquet", "a name starting with '.' is hidden"),
     ("out/x.csv", "must end with .parquet and name a file")],
)  # fmt: skip
def test_an_output_name_that_is_no_parquet_file_is_a_usage_error(tmp_path, output, cause):
    result = run_reference("--input-path", str(SAMPLE), "--output-path", str(tmp_path / output))
    assert result.returncode == 2
    assert cause in result.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
