"""Contract §2 rule 3 and §3: ISO-8601 text to a UTC instant in microseconds, vectorised.

Arrow's own ISO-8601 cast fails a whole array on one bad value and accepts forms the
contract rejects (a space for `T`, `+0530`, offsets past 23 hours is not its check), so the
shape is checked with one RE2 pattern, and for the records that match, whose characters then
sit at known positions, the digits are read straight from the Arrow string buffer. The
calendar is checked with integer arithmetic: every rule of the contract is visible here.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SHAPE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_MICROS_PER_DAY = 86_400_000_000
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_FRACTION_SCALE = 10 ** np.arange(5, -1, -1, dtype=np.int64)  # 100000, 10000, ..., 1


def parse_instants(text: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Return (is_valid, microseconds since the epoch in UTC) for trimmed, non-null text.

    Years run 0001-9999, both as written and once moved to UTC (contract §2 rule 3): the
    Gregorian calendar has no year 0, and past either end the UTC date is one that tools
    cannot hold or disagree on. Invalid entries hold 0 in the second array.
    """
    parsed = [_parse_chunk(chunk) for chunk in text.chunks]
    if not parsed:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
    return np.concatenate([v for v, _ in parsed]), np.concatenate([m for _, m in parsed])


def utc_dates(micros: np.ndarray) -> np.ndarray:
    """Days since the epoch of each instant's UTC date (floor division: before 1970 too)."""
    return micros // _MICROS_PER_DAY


def _parse_chunk(text: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    matched = np.flatnonzero(pc.match_substring_regex(text, _SHAPE).to_numpy(zero_copy_only=False))
    valid = np.zeros(len(text), dtype=bool)
    micros = np.zeros(len(text), dtype=np.int64)
    if matched.size == 0:
        return valid, micros
    _, offsets_buffer, data_buffer = text.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[
        text.offset : text.offset + len(text) + 1
    ]
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    start = offsets[:-1][matched].astype(np.int64)
    end = offsets[1:][matched].astype(np.int64)

    def digits(*positions: np.ndarray) -> np.ndarray:
        value = np.zeros(len(start), dtype=np.int64)
        for position in positions:
            value = value * 10 + (data[position].astype(np.int64) - 48)
        return value

    year = digits(start, start + 1, start + 2, start + 3)
    month = digits(start + 5, start + 6)
    day = digits(start + 8, start + 9)
    hour = digits(start + 11, start + 12)
    minute = digits(start + 14, start + 15)
    second = digits(start + 17, start + 18)

    is_utc = data[end - 1] == ord("Z")
    offset_sign = np.where(data[end - 6] == ord("-"), -1, 1)
    offset_hour = np.where(is_utc, 0, digits(end - 5, end - 4))
    offset_minute = np.where(is_utc, 0, digits(end - 2, end - 1))

    # ".f{1,6}" sits between position 19 and the offset; absent digits count as zeros.
    fraction_digits = np.clip(end - np.where(is_utc, 1, 6) - (start + 20), 0, 6)
    fraction = np.zeros(len(start), dtype=np.int64)
    for k in range(6):
        present = fraction_digits > k
        position = np.where(present, start + 20 + k, start)
        fraction += np.where(present, data[position].astype(np.int64) - 48, 0) * _FRACTION_SCALE[k]

    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    month_days = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + ((month == 2) & leap)
    ok = (
        (year >= 1)
        & month_ok
        & (day >= 1)
        & (day <= month_days)
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
        & (offset_hour <= 23)
        & (offset_minute <= 59)
    )
    local_seconds = (hour * 60 + minute) * 60 + second
    offset_seconds = offset_sign * (offset_hour * 60 + offset_minute) * 60
    instant = (
        _days_from_civil(year, month, day) * _MICROS_PER_DAY
        + (local_seconds - offset_seconds) * 1_000_000
        + fraction
    )
    ok &= (instant >= _FIRST_INSTANT) & (instant <= _LAST_INSTANT)
    valid[matched] = ok
    micros[matched] = np.where(ok, instant, 0)
    return valid, micros


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Howard Hinnant's days_from_civil: proleptic Gregorian date to days since 1970-01-01."""
    y = year - (month <= 2)
    era = y // 400
    year_of_era = y - era * 400
    day_of_year = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


# 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the UTC instants contract §2 admits.
_FIRST_INSTANT = int(_days_from_civil(np.int64(1), np.int64(1), np.int64(1))) * _MICROS_PER_DAY
_LAST_INSTANT = (
    int(_days_from_civil(np.int64(10_000), np.int64(1), np.int64(1))) * _MICROS_PER_DAY - 1
)
