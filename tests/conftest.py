"""Fixtures that build real CSV files and run the real pipeline on them."""

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared_etl.csv_input import CsvSummary, read_events_csv
from shared_etl.events import PreparedEvents, prepare_events
from tests.file_queue import pytest_collection_modifyitems, pytest_runtest_protocol  # noqa: F401

PROJECT = Path(__file__).resolve().parent.parent
SAMPLE = PROJECT / "data" / "synthetic_events.csv"
ORDERS = PROJECT / "tests" / "pipelines" / "orders"  # the contract's example pipeline
# Every process this test session starts carries this in its environment (children inherit it,
# even those that start their own session), so the session tells its own processes from
# anything else on the machine: `make test` runs the deployed tier beside the rest, each a
# session of its own. Set on import, before any test can start a process.
SESSION_MARK = ("PARITY_TEST_SESSION", secrets.token_hex(8))
os.environ[SESSION_MARK[0]] = SESSION_MARK[1]
HEADER = "event_id,event_ts,user_id,session_id,event_type,amount,currency,country"

# A valid record; tests change one field at a time.
VALID = {
    "event_id": "e1",
    "event_ts": "2024-01-01T10:00:00Z",
    "user_id": "1",
    "session_id": "s1",
    "event_type": "view",
    "amount": "",
    "currency": "",
    "country": "US",
}


def csv_line(**changes: str) -> str:
    """One CSV line of VALID with `changes`, quoted where a value needs it."""
    values = {**VALID, **changes}
    return ",".join(_quote(values[name]) for name in HEADER.split(","))


def _quote(value: str) -> str:
    if any(char in value for char in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write `lines` under HEADER (or `header`) to a fresh file and return its path."""
    counter = iter(range(1_000_000))

    def write(lines: list[str], header: str = HEADER, newline: str = "\n") -> Path:
        path = tmp_path / f"events-{next(counter)}.csv"
        path.write_bytes((newline.join([header, *lines]) + newline).encode("utf-8"))
        return path

    return write


@pytest.fixture
def prepare_file() -> Callable[[Path], PreparedEvents]:
    def prepare(path: Path) -> PreparedEvents:
        return prepare_events(str(path))

    return prepare


def read_raw(path: Path) -> tuple[pa.Table, CsvSummary]:
    """The well-formed records as the reader streams them, with `source_row`, and the summary."""
    summary = read_events_csv(str(path), lambda block: block)
    blocks = summary.blocks
    records = pa.concat_tables(blocks) if blocks else pa.table({})
    if blocks:
        rows = pa.array(summary.well_formed_source_rows, pa.int64())
        records = records.add_column(0, "source_row", rows)
    return records, summary


def carries_session_mark(proc: Path) -> bool:
    """Whether /proc/<pid> is a process this session started (or one of theirs)."""
    try:
        variables = (proc / "environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{SESSION_MARK[0]}={SESSION_MARK[1]}".encode() in variables


def run_reference(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The reference runner in its own process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "parity", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def read_table(path: Path) -> pa.Table:
    return pq.read_table(path)


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """make as a user runs it, even when the tests themselves run under `make test`."""
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env={**user_environment(), **(env or {})},
        check=False,
    )


def user_environment() -> dict[str, str]:
    """os.environ without what an enclosing make passes down (its level and flags), which
    would turn a test's `make: ***` into `make[1]: ***` and carry `make test`'s flags in."""
    inherited = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")
    return {name: value for name, value in os.environ.items() if name not in inherited}


def make_variable(name: str) -> str:
    """A variable as the Makefile defines it: tests check other files against the front door."""
    result = make("-s", "--eval=print-%: ; @echo $($*)", f"print-{name}")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def siblings(output: Path) -> list[Path]:
    """The two Parquet files of a run's output: the metrics and the quarantine."""
    stem = output.name[: -len(".parquet")]
    return [output.with_name(stem + suffix) for suffix in (".parquet", ".rejects.parquet")]


def assert_same_parquet(got: Path, expected: Path) -> None:
    for got_file, expected_file in zip(siblings(got), siblings(expected), strict=True):
        assert got_file.read_bytes() == expected_file.read_bytes(), f"{got_file} != {expected_file}"


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount a small tmpfs under tmp_path, e.g. mount("12k") (full at once) or mount("1m",
    "ro") (read-only): a real machine fault. Mounting needs root; without it, skipped."""
    mounted: list[Path] = []

    def mount_tmpfs(size: str, *options: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        point = tmp_path / f"mount{len(mounted)}"
        point.mkdir()
        options_text = ",".join([f"size={size}", *options])
        subprocess.run(["mount", "-t", "tmpfs", "-o", options_text, "tmpfs", str(point)],
                       check=True)  # fmt: skip
        mounted.append(point)
        return point

    yield mount_tmpfs
    for point in mounted:
        subprocess.run(["umount", str(point)], check=True)


@pytest.fixture
def orders_folder(tmp_path: Path) -> Path:
    """The example pipeline and its sample, copied to a folder of their own outside the
    project (a space in its name), with no golden file: a user's pipeline as found."""
    folder = tmp_path / "my pipelines"
    folder.mkdir()
    for name in ("orders.py", "orders.csv"):
        shutil.copy(ORDERS / name, folder / name)
    return folder
