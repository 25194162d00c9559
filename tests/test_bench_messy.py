"""bench/messy.py makes the dirt issue 24 asks for, counted by an independent reading.

The file is read with Python's csv module and every record is judged by the rules of
docs/contract.md §2, written out again here in plain Python (datetime, re), not with
shared_etl: the shares below are what the benchmark's second shape promises.
"""

import csv
import datetime as dt
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
ROWS = 30_000
REQUIRED = ["event_id", "event_ts", "user_id", "session_id", "event_type",
            "amount", "currency", "country"]  # fmt: skip
REASONS = ["malformed_record", "missing_event_id", "invalid_event_ts", "invalid_user_id",
           "missing_session_id", "invalid_event_type", "invalid_country", "invalid_amount",
           "invalid_currency"]  # fmt: skip
TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,6})?"
    r"(Z|([+-])([0-9]{2}):([0-9]{2}))"
)
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _generate(path: Path, rows: int, seed: int = 2026) -> bytes:
    subprocess.run(
        [sys.executable, "-m", "bench.messy", "--rows", str(rows), "--seed", str(seed),
         "--output", str(path)],
        check=True, cwd=PROJECT, capture_output=True,
    )  # fmt: skip
    return path.read_bytes()


def _instant(text: str) -> dt.datetime | None:
    """Rule 3: the instant in UTC, or None when the text names none."""
    match = TIMESTAMP.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = (match.group(7) or ".")[1:].ljust(6, "0")
    sign, off_hours, off_minutes = match.group(9), match.group(10), match.group(11)
    if off_hours is not None and (int(off_hours) > 23 or int(off_minutes) > 59):
        return None
    try:
        local = dt.datetime(year, month, day, hour, minute, second, int(fraction))
        offset = dt.timedelta(hours=int(off_hours or 0), minutes=int(off_minutes or 0))
        return local - offset if sign == "+" else local + offset
    except (ValueError, OverflowError):  # no such date or time, or past year 1..9999
        return None


def _reason(record: list[str], header: list[str]) -> str | None:
    if len(record) != len(header):
        return "malformed_record"
    value = {name: record[header.index(name)].strip(" \t\r\n") for name in REQUIRED}
    event_type = value["event_type"].translate(ASCII_LOWER)
    purchase = event_type == "purchase"
    amount = value["amount"]
    amount_ok = re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,2})?", amount) and float(amount) > 0
    checks = [
        ("missing_event_id", value["event_id"] != ""),
        ("invalid_event_ts", _instant(value["event_ts"]) is not None),
        ("invalid_user_id", bool(re.fullmatch(r"[0-9]{1,18}", value["user_id"]))
         and int(value["user_id"]) > 0),
        ("missing_session_id", value["session_id"] != ""),
        ("invalid_event_type", event_type in {"view", "click", "add_to_cart", "purchase"}),
        ("invalid_country",
         bool(re.fullmatch(r"[A-Z]{2}", value["country"].translate(ASCII_UPPER)))),
        ("invalid_amount", not purchase or bool(amount_ok)),
        ("invalid_currency",
         not purchase or value["currency"].translate(ASCII_UPPER) in {"USD", "EUR", "GBP", "JPY"}),
    ]  # fmt: skip
    return next((name for name, passes in checks if not passes), None)


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("messy") / "messy.csv"
    _generate(path, ROWS)
    with open(path, encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        header = [name.strip(" \t\r\n") for name in next(rows)]
        records = [row for row in rows if row]  # a blank line is no record
    reasons: Counter[str] = Counter()
    seen: set[str] = set()
    duplicates = offsets = valid = quoted = longer = 0
    for record in records:
        longer += len(record) > len(header)
        quoted += any(c in field for field in record for c in ',"\n')
        reason = _reason(record, header)
        if reason:
            reasons[reason] += 1
            continue
        event_id = record[header.index("event_id")].strip(" \t\r\n")
        if event_id in seen:
            duplicates += 1
            continue
        seen.add(event_id)
        valid += 1
        offsets += not record[header.index("event_ts")].strip(" \t\r\n").endswith("Z")
    return {"records": len(records), "reasons": reasons, "duplicates": duplicates,
            "offsets": offsets, "valid": valid, "quoted": quoted, "longer": longer}  # fmt: skip


def test_every_reason_is_about_one_record_in_ninety(judged: dict) -> None:
    shares = {reason: judged["reasons"][reason] / judged["records"] for reason in REASONS}
    assert all(0.007 <= share <= 0.025 for share in shares.values()), shares


def test_about_one_record_in_ten_is_rejected(judged: dict) -> None:
    assert 0.08 <= sum(judged["reasons"].values()) / judged["records"] <= 0.12


def test_one_record_in_a_hundred_has_extra_columns(judged: dict) -> None:
    assert 0.007 <= judged["longer"] / judged["records"] <= 0.013


def test_about_three_percent_are_duplicates(judged: dict) -> None:
    assert 0.02 <= judged["duplicates"] / judged["records"] <= 0.04


def test_most_kept_timestamps_carry_an_offset_other_than_z(judged: dict) -> None:
    assert judged["offsets"] / judged["valid"] >= 0.7


def test_many_records_have_fields_that_must_be_quoted(judged: dict) -> None:
    assert judged["quoted"] / judged["records"] >= 0.3


def test_the_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    first = _generate(tmp_path / "a.csv", 2000)
    assert _generate(tmp_path / "b.csv", 2000) == first
    assert _generate(tmp_path / "c.csv", 2000, seed=7) != first
