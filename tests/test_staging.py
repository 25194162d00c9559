"""Contract §9: a run's staging area and temporaries die with it, and only with it.

Holders are real processes: one killed with SIGKILL at a chosen point (its leftovers must be
cleared by the next run), one alive and waiting (its files must be left alone).
"""

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from parity.errors import LostFileError, is_retryable
from parity.files import atomic_files, check_output_dir
from tests.conftest import PROJECT, SAMPLE, run_reference

HOLD_AREA = """
import os, signal, sys
from parity.staging import staging_area
from parity.staging import run_folder
with staging_area("holder") as area:
    open(os.path.join(run_folder("run-1"), "events.arrow"), "wb").write(b"x" * 1000)
    print(area, flush=True)
    {then}
"""

HOLD_TEMPORARY = """
import os, signal, sys
from parity.files import atomic_files
with atomic_files(sys.argv[1]) as (temporary,):
    open(temporary, "wb").write(b"half")
    print(temporary, flush=True)
    {then}
"""

# Forces the interleaving of a backfill's dates in one folder: every time the write probe
# opens or removes a file (after its probe may exist, before it is done), another writer's
# clean-up of dead temporaries runs in that folder first. An audit hook is for the whole
# process and cannot be removed, hence a process of its own.
PROBE_UNDER_CLEAN_UP = """
import sys, tempfile
from parity.files import clear_dead_temporaries
from parity.files import check_output_dir
folder, tmpfile_works = sys.argv[1], sys.argv[2] == "1"
tempfile._O_TMPFILE_WORKS = tmpfile_works  # 0: the filesystem has no O_TMPFILE
probing, clean_ups, removed = False, 0, []
def clean_up_first(event, args):
    global probing, clean_ups
    if probing and event in ("open", "os.remove"):
        probing = False  # not re-entered by the clean-up's own opens
        clean_ups += 1
        removed.extend(clear_dead_temporaries(folder))
        probing = True
sys.addaudithook(clean_up_first)
probing = True
check_output_dir(folder)
probing = False
print(clean_ups, removed)
"""

DIE = "os.kill(os.getpid(), signal.SIGKILL)"
WAIT = "sys.stdin.read()"


def _holder(code: str, then: str, staging: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code.format(then=then), *args],
        cwd=PROJECT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "ETL_STAGING_ROOT": str(staging)},
    )  # fmt: skip


def _reference_run(staging: Path, output: Path) -> None:
    result = run_reference(
        "--input-path", str(SAMPLE), "--output-path", str(output),
        env={"ETL_STAGING_ROOT": str(staging)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_a_finished_run_leaves_no_staging_behind(tmp_path):
    staging = tmp_path / "staging"
    _reference_run(staging, tmp_path / "out.parquet")
    assert list(staging.iterdir()) == []


def test_the_area_of_a_killed_run_is_cleared_by_the_next_run(tmp_path):
    staging = tmp_path / "staging"
    killed = _holder(HOLD_AREA, DIE, staging)
    area = Path(killed.stdout.readline().strip())
    assert killed.wait() == -signal.SIGKILL
    assert [path.name for path in area.glob("run-1-*/events.arrow")] == ["events.arrow"]
    _reference_run(staging, tmp_path / "out.parquet")
    assert list(staging.iterdir()) == []


def test_the_area_of_a_live_run_is_left_alone(tmp_path):
    staging = tmp_path / "staging"
    alive = _holder(HOLD_AREA, WAIT, staging)
    try:
        area = Path(alive.stdout.readline().strip())
        _reference_run(staging, tmp_path / "out.parquet")
        (staged,) = area.glob("run-1-*/events.arrow")
        assert staged.read_bytes() == b"x" * 1000
    finally:
        alive.communicate("")
    assert alive.returncode == 0
    assert list(staging.iterdir()) == []


def test_temporaries_of_a_killed_writer_are_cleared_by_the_next_write_there(tmp_path):
    output = tmp_path / "out" / "metrics.parquet"
    killed = _holder(HOLD_TEMPORARY, DIE, tmp_path / "staging", str(output))
    temporary = Path(killed.stdout.readline().strip())
    assert killed.wait() == -signal.SIGKILL
    assert temporary.exists() and not output.exists()
    _reference_run(tmp_path / "staging", output)
    assert sorted(path.name for path in output.parent.iterdir()) == [
        "metrics.manifest.json", "metrics.parquet", "metrics.rejects.parquet",
    ]  # fmt: skip


def test_temporaries_of_a_live_writer_are_left_alone(tmp_path):
    output = tmp_path / "out" / "metrics.parquet"
    alive = _holder(HOLD_TEMPORARY, WAIT, tmp_path / "staging", str(output))
    try:
        temporary = Path(alive.stdout.readline().strip())
        _reference_run(tmp_path / "staging", output)
        assert temporary.read_bytes() == b"half"
    finally:
        alive.communicate("")
    assert alive.returncode == 0
    assert not temporary.exists()


def test_writers_in_one_folder_at_once_never_clear_each_others_temporaries(tmp_path):
    """The dates of a backfill write side by side (threads in Prefect, processes in deployed
    mode): each write clears dead temporaries, and must never take a live one for dead."""

    def write(writer: int) -> None:
        for number in range(100):
            paths = [str(tmp_path / f"{writer}-{number}{suffix}.parquet")
                     for suffix in ("", ".rejects")]  # fmt: skip
            with atomic_files(*paths) as temporaries:
                for temporary in temporaries:
                    Path(temporary).write_bytes(b"x")

    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(write, writer) for writer in range(4)]:
            future.result()
    assert len(list(tmp_path.iterdir())) == 4 * 100 * 2


@pytest.mark.parametrize("o_tmpfile", ["1", "0"], ids=["o_tmpfile", "named_fallback"])
def test_a_clean_up_while_the_write_probe_lives_never_takes_the_probe(tmp_path, o_tmpfile):
    result = subprocess.run(
        [sys.executable, "-c", PROBE_UNDER_CLEAN_UP, str(tmp_path), o_tmpfile],
        cwd=PROJECT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    clean_ups, removed = result.stdout.split(" ", 1)
    assert int(clean_ups) >= 2, "the clean-up never ran while the probe was open"
    assert removed.strip() == "[]"
    assert list(tmp_path.iterdir()) == []


def test_probes_and_publications_in_one_folder_at_once_all_succeed(tmp_path):
    """Many writers in one folder, each proving it writable then publishing, as a backfill's
    dates do: no probe is taken for a dead temporary, no live temporary is cleared."""

    def probe_and_publish(writer: int) -> None:
        for number in range(300):
            check_output_dir(str(tmp_path))
            with atomic_files(str(tmp_path / f"{writer}-{number}.parquet")) as (temporary,):
                Path(temporary).write_bytes(b"x")

    with ThreadPoolExecutor(max_workers=6) as pool:
        for future in [pool.submit(probe_and_publish, writer) for writer in range(6)]:
            future.result()
    assert len(list(tmp_path.iterdir())) == 6 * 300


def test_a_temporary_taken_by_another_process_is_named_so_and_may_be_retried(tmp_path):
    output = tmp_path / "metrics.parquet"
    with pytest.raises(LostFileError) as raised, atomic_files(str(output)) as (temporary,):
        Path(temporary).write_bytes(b"x")
        os.unlink(temporary)  # what a clean-up that ignored our lock would do
    assert str(raised.value) == (
        f"{temporary}: removed by another process while this run held it; nothing published"
    )
    assert is_retryable(raised.value)
    assert list(tmp_path.iterdir()) == []
