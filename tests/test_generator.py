"""The generator: deterministic, and as dirty as the contract needs (on the committed sample)."""

import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pytest

from shared_etl.contract import REJECT_REASONS
from shared_etl.events import prepare_events
from tests.conftest import PROJECT, SAMPLE, read_raw

SAMPLE_ARGS = ["--rows", "5000", "--seed", "42", "--start", "2024-01-01", "--days", "7"]


def _generate(path: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "shared_etl.generate", *args, "--output", str(path)],
                   check=True, capture_output=True, cwd=PROJECT)  # fmt: skip


def test_the_committed_sample_is_what_make_data_generates(tmp_path):
    _generate(tmp_path / "again.csv", *SAMPLE_ARGS)
    assert (tmp_path / "again.csv").read_bytes() == SAMPLE.read_bytes()


def test_another_seed_gives_other_bytes(tmp_path):
    _generate(tmp_path / "other.csv", *SAMPLE_ARGS[:2], "--seed", "43", *SAMPLE_ARGS[4:])
    assert (tmp_path / "other.csv").read_bytes() != SAMPLE.read_bytes()


@pytest.fixture(scope="module")
def sample():
    records, _ = read_raw(SAMPLE)
    return records, prepare_events(str(SAMPLE))


def test_the_sample_breaks_every_rule_of_the_contract(sample):
    _, prepared = sample
    assert all(count > 0 for count in prepared.rejected_by_reason().values())
    assert set(prepared.rejected_by_reason()) == set(REJECT_REASONS)


def test_the_sample_has_duplicates_mixed_case_and_padding(sample):
    raw, prepared = sample
    assert prepared.duplicates > 0
    event_types = set(raw.column("event_type").to_pylist())
    assert {"VIEW", "View"} & event_types
    countries = raw.column("country").to_pylist()
    assert any(value.islower() for value in countries)
    assert any(value != value.strip() for value in raw.column("user_id").to_pylist())


def test_the_sample_has_several_offsets_and_records_whose_date_moves_in_utc(sample):
    raw, prepared = sample
    stamps = raw.column("event_ts").to_pylist()
    offsets = {stamp.strip()[-6:] for stamp in stamps if stamp.strip()[-6:-5] in "+-"}
    assert len(offsets) >= 5 and any(stamp.endswith("Z") for stamp in stamps)
    local_dates = {stamp.strip()[:10] for stamp in stamps}
    utc_dates = {day.isoformat() for day in prepared.kept.column("event_date").to_pylist()}
    assert local_dates - utc_dates  # e.g. 2023-12-31 local time is 2024-01-01 in UTC


def test_the_sample_has_quoted_commas_quotes_newlines_and_blank_lines():
    text = SAMPLE.read_text(encoding="utf-8")
    assert '"Mozilla/5.0 (X11, Linux x86_64)"' in text
    assert '"tablet ""kiosk"", lobby"' in text
    assert '"tv\nliving room"' in text
    assert "\n\n" in text


def test_kept_sample_events_span_the_seven_sample_dates(sample):
    _, prepared = sample
    dates = pc.unique(prepared.kept.column("event_date")).to_pylist()
    assert [day.isoformat() for day in sorted(dates)] == [f"2024-01-0{n}" for n in range(1, 8)]
