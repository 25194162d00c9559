"""The one contract every wrapper passes, driven the way a user drives it: through `make`.

Each wrapper's Parquet files must be byte-identical to the reference runner's on the same
input and parameters. A wrapper that has not landed yet is skipped, never faked.
"""

import subprocess
from pathlib import Path

import pytest

from tests.conformance.runs import BACKFILL, SAMPLE_DATES
from tests.conformance.wrappers import DATED_STEP, Wrapper, read_manifest, survivors
from tests.conftest import PROJECT, assert_same_parquet, csv_line, make, siblings

pytestmark = pytest.mark.orchestrators

def run(wrapper: Wrapper, output: Path, env: dict | None = None, **params: str):
    variables = [f"{name.upper()}={value}" for name, value in params.items()]
    return make(wrapper.name, f"OUTPUT={output}", *variables, env=env)


@pytest.fixture(scope="module")
def default_run(wrapper, tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """One default run with an empty $HOME, shared by the tests that only read its results."""
    folder = tmp_path_factory.mktemp(f"{wrapper.name}-default")
    home = folder / "home"
    home.mkdir()
    output = folder / "out" / f"{wrapper.name}_output.parquet"
    result = run(wrapper, output, env={"HOME": str(home)})
    return output, home, result


def test_default_run_writes_three_files_byte_identical_to_the_reference(
    wrapper, default_run, truth
):
    output, _, result = default_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert survivors(wrapper.name) == [], "the run left processes running"
    assert sorted(path.name for path in output.parent.iterdir()) == sorted(
        [
            *(path.name for path in siblings(output)),
            output.name.replace(".parquet", ".manifest.json"),
        ]
    )
    assert_same_parquet(output, truth / "sample.parquet")


def test_the_manifest_reconciles_and_names_the_orchestrator(wrapper, default_run):
    output, _, _ = default_run
    manifest = read_manifest(output)
    counts = manifest["counts"]
    assert counts["records_read"] == counts["kept"] + counts["rejected"] + counts["duplicates"]
    assert manifest["wrapper"]["name"] == wrapper.name
    assert manifest["destination"] == str(output)


def test_state_stays_in_the_project_and_home_is_untouched(wrapper, default_run):
    _, home, result = default_run
    assert result.returncode == 0
    assert [str(path) for path in home.rglob("*")] == [], "the run wrote into $HOME"
    if wrapper.state is not None:
        assert wrapper.state.is_dir() and any(wrapper.state.iterdir())
        ignored = subprocess.run(["git", "check-ignore", "-q", str(wrapper.state)], cwd=PROJECT)
        assert ignored.returncode == 0, f"{wrapper.state} is not ignored by git"


def test_a_second_run_gives_the_same_bytes_and_replaces_the_files(wrapper, default_run):
    output, _, _ = default_run
    before = {path: (path.read_bytes(), path.stat().st_ino) for path in siblings(output)}
    result = run(wrapper, output)
    assert result.returncode == 0, result.stdout + result.stderr
    for path, (content, inode) in before.items():
        assert path.read_bytes() == content
        assert path.stat().st_ino != inode, f"{path} was rewritten in place, not replaced"


def test_input_and_output_parameters_pass_through(wrapper, truth, tmp_path):
    output = tmp_path / "nested" / "elsewhere.parquet"
    result = run(wrapper, output, input=str(truth / "other_events.csv"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert_same_parquet(output, truth / "other.parquet")


def test_a_date_parameter_windows_the_metrics(wrapper, truth, tmp_path):
    output = tmp_path / "day.parquet"
    result = run(wrapper, output, date="2024-01-03")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_same_parquet(output, truth / "2024-01-03.parquet")
    assert read_manifest(output)["parameters"]["date"] == "2024-01-03"


def test_backfill_writes_one_identical_file_set_per_date(wrapper, truth, tmp_path):
    result = make(f"backfill-{wrapper.name}", f"START={BACKFILL[0]}", f"END={BACKFILL[1]}",
                  f"OUTPUT_DIR={tmp_path}")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert survivors(wrapper.name) == [], "the backfill left processes running"
    folder = tmp_path / wrapper.name
    assert sorted(path.name for path in folder.iterdir() if path.suffix == ".parquet") == sorted(
        name for day in SAMPLE_DATES for name in (f"{day}.parquet", f"{day}.rejects.parquet")
    )
    for day in SAMPLE_DATES:
        assert_same_parquet(folder / f"{day}.parquet", truth / f"{day}.parquet")
        assert read_manifest(folder / f"{day}.parquet")["parameters"]["date"] == day


def _needs_retries(wrapper: Wrapper) -> None:
    if wrapper.retries is None:
        pytest.skip(f"{wrapper.name} has no orchestrator, so no retries")


def test_transient_failures_within_the_retries_are_retried_by_the_orchestrator(
    wrapper, truth, tmp_path
):
    _needs_retries(wrapper)
    failures = wrapper.retries
    output = tmp_path / "retried.parquet"
    result = run(wrapper, output, env={"ETL_FAIL_ATTEMPTS": str(failures)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert_same_parquet(output, truth / "sample.parquet")
    manifest = read_manifest(output)
    assert manifest["attempts"][DATED_STEP] == failures + 1
    assert wrapper.recorded_attempts(output) == failures + 1


def test_transient_failures_beyond_the_retries_fail_the_run_and_write_nothing(wrapper, tmp_path):
    _needs_retries(wrapper)
    output = tmp_path / "failed.parquet"
    result = run(wrapper, output, env={"ETL_FAIL_ATTEMPTS": str(wrapper.retries + 1)})
    assert result.returncode != 0
    assert f"{DATED_STEP}: injected transient failure" in result.stderr
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


BAD_INPUTS = {
    "missing-file": (None, "no such file"),
    "missing-column": ("event_id,event_ts,user_id\ne1,2024-01-01T00:00:00Z,1\n", "missing"),
    "not-utf8": (None, "not UTF-8"),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_fails_with_a_message_naming_the_file_and_writes_nothing(wrapper, tmp_path, kind):
    source = tmp_path / "input" / f"{kind}.csv"
    source.parent.mkdir()
    content, problem = BAD_INPUTS[kind]
    if content is not None:
        source.write_text(content)
    elif kind == "not-utf8":
        source.write_bytes(
            b"event_id,event_ts,user_id,session_id,event_type,amount,currency,country\n"
            + csv_line(event_id="caf").encode()
            + b"\xe9\n"
        )
    output = tmp_path / "out" / "bad.parquet"
    result = run(wrapper, output, input=str(source))
    assert result.returncode != 0
    assert str(source) in result.stderr and problem in result.stderr, result.stderr
    assert not output.parent.exists() or not any(output.parent.iterdir())
