"""Deterministic, realistic and dirty events CSV (the committed sample and the bench file).

    python -m shared_etl.generate --rows N --seed S --start DATE --days D --output PATH

Same arguments, same bytes, on any Python 3 (random.Random's algorithms are stable). The
dirt is the contract's: every reject reason of contract §2, duplicates of earlier events (some
changed), mixed case, padded values, blank lines, UTC offsets that move a record to another
UTC date, and a `device` column with quoted commas, quotes and newlines. Records are written
as they are made, so memory stays bounded (about 0.4 GB) whatever N is: 60M records fit.
"""

import argparse
import csv
import datetime as dt
import io
import random
import sys
from collections.abc import Iterable, Iterator

from parity.files import atomic_files

HEADER = [
    "event_id", "event_ts", "user_id", "session_id", "event_type",
    "amount", "currency", "country", "device",
]  # fmt: skip

_TYPES = (["view"] * 60) + (["click"] * 25) + (["add_to_cart"] * 10) + (["purchase"] * 5)
_COUNTRIES = ["US"] * 8 + ["GB"] * 3 + ["DE"] * 3 + ["FR", "JP", "BR", "IN", "CA", "AU", "NL"]
_CURRENCIES = ["USD"] * 5 + ["EUR"] * 3 + ["GBP", "JPY"]
_OFFSETS = ["Z", "+00:00", "+01:00", "+02:00", "-05:00", "-08:00", "+05:30", "+09:00", "-03:30"]
_DEVICES = [
    "web", "ios", "android", "Mozilla/5.0 (X11, Linux x86_64)",
    'tablet "kiosk", lobby', "tv\nliving room",
]  # fmt: skip

# A record breaks contract §2 rule k with probability _BREAK_RATE; each rule has its own bad values.
_BREAK_RATE = 0.004
# Duplicates re-send one of the last _WINDOW records (2M+: the 2M bench file as before).
_WINDOW = 1 << 21
_BAD_TS = [
    "2024-02-30T10:00:00Z", "2024-01-01 10:00:00Z", "2024-01-01T24:00:00Z",
    "2024-01-01T10:60:00+01:00", "2024-01-01T10:00:00+0530", "yesterday", "",
    "2024-01-01T10:00:00", "2024-01-01T10:00:00.1234567Z", "2024-01-01T10:00:00+24:00",
]  # fmt: skip
_BAD_USER = ["0", "000", "-7", "12a", "1234567890123456789", "", "٣", "4.0"]
_BAD_TYPE = ["login", "VIEWS", "", "purchase!", "vıew"]
_BAD_COUNTRY = ["USA", "U", "", "1A", "ÜS", "U S"]
_BAD_AMOUNT = ["", "0", "0.00", "-5.00", "12.345", "abc", "1,5", "1234567890123.00", ".5"]
_BAD_CURRENCY = ["", "CHF", "US D", "dollar", "€"]


def generate_lines(rows: int, seed: int, start: dt.date, days: int) -> Iterator[str]:
    """The records as CSV lines (without the header); a blank line is "\\n".

    Memory stays bounded whatever `rows` is: a duplicate re-sends one of the last `_WINDOW`
    records, kept as their lines. Up to `_WINDOW` records that is any earlier record, exactly
    as when every record was kept, so those files have the same bytes as before.
    """
    rng = random.Random(seed)
    users = max(10, rows // 20)
    origin = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    span_seconds = days * 86_400
    line = csv.writer(_Line(), lineterminator="\n")
    written: list[str] = []  # the last _WINDOW records, a ring once full
    count = 0
    for number in range(rows):
        if written and rng.random() < 0.02:
            yield line.writerow(_duplicate(rng, _fields(rng.choice(written))))
            continue
        if rng.random() < 0.002:
            yield "\n"
        user = rng.randint(1, users)
        instant = origin + dt.timedelta(
            seconds=rng.randrange(span_seconds), microseconds=rng.randrange(1_000_000)
        )
        event_type = rng.choice(_TYPES)
        amount, currency = "", ""
        if event_type == "purchase":
            currency = rng.choice(_CURRENCIES)
            amount = _amount(rng, currency)
        record = [
            f"evt-{seed}-{number:09d}",
            _timestamp(rng, instant),
            str(user),
            f"s-{user}-{rng.randint(1, 4)}",
            event_type,
            amount,
            currency,
            rng.choice(_COUNTRIES),
            rng.choice(_DEVICES),
        ]
        _dirty(rng, record)
        text = line.writerow(record)
        if count < _WINDOW:
            written.append(text)
        else:
            written[count % _WINDOW] = text
        count += 1
        yield text


class _Line:
    """A csv.writer target that hands the formatted line back (writerow returns it)."""

    @staticmethod
    def write(text: str) -> str:
        return text


def _fields(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text, newline="")))


def _timestamp(rng: random.Random, instant: dt.datetime) -> str:
    offset = rng.choice(_OFFSETS)
    if offset == "Z":
        local, suffix = instant, "Z"
    else:
        sign = -1 if offset[0] == "-" else 1
        delta = dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])) * sign
        local, suffix = instant + delta, offset
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    digits = rng.choice([0, 0, 0, 1, 3, 6])
    if digits:
        text += "." + f"{local.microsecond:06d}"[:digits]
    return text + suffix


def _amount(rng: random.Random, currency: str) -> str:
    if currency == "JPY":
        return str(rng.randint(100, 50_000))
    cents = rng.randint(1, 50_000)
    return rng.choice(
        [f"{cents // 100}.{cents % 100:02d}", f"{cents // 10}.{cents % 10}", str(cents // 100 or 1)]
    )


def _dirty(rng: random.Random, record: list[str]) -> None:
    """Case and padding that normalisation must absorb, then at most one broken rule."""
    if rng.random() < 0.05:
        record[4] = record[4].upper() if rng.random() < 0.5 else record[4].title()
    if rng.random() < 0.05:
        record[7] = record[7].lower()
    if record[6] and rng.random() < 0.1:
        record[6] = record[6].lower()
    if rng.random() < 0.03:
        column = rng.choice([0, 1, 2, 3, 4, 5, 6, 7])
        record[column] = rng.choice([" ", "\t", "  "]) + record[column] + rng.choice([" ", ""])
    roll = rng.random()
    rule = int(roll / _BREAK_RATE) + 1 if roll < 9 * _BREAK_RATE else 0
    if rule == 1:
        if rng.random() < 0.5:
            del record[rng.randrange(len(record))]
        else:
            record.append("extra")
    elif rule == 2:
        record[0] = rng.choice(["", "  "])
    elif rule == 3:
        record[1] = rng.choice(_BAD_TS)
    elif rule == 4:
        record[2] = rng.choice(_BAD_USER)
    elif rule == 5:
        record[3] = rng.choice(["", " "])
    elif rule == 6:
        record[4] = rng.choice(_BAD_TYPE)
    elif rule == 7:
        record[7] = rng.choice(_BAD_COUNTRY)
    elif rule in (8, 9):
        record[4] = "purchase"
        record[5], record[6] = "10.00", "USD"
        if rule == 8:
            record[5] = rng.choice(_BAD_AMOUNT)
        else:
            record[6] = rng.choice(_BAD_CURRENCY)


def _duplicate(rng: random.Random, original: list[str]) -> list[str]:
    """A re-sent event: the same event_id, sometimes with other values (the first one wins)."""
    copy = list(original)
    if len(copy) > 3 and rng.random() < 0.3:
        copy[3] = copy[3] + "-resent"
    return copy


def write_csv(path: str, lines: Iterable[str]) -> None:
    """The header and `lines`, published atomically: nothing under `path` until complete."""
    with (
        atomic_files(path) as (temporary,),
        open(temporary, "w", encoding="utf-8", newline="", buffering=1 << 20) as handle,
    ):
        csv.writer(handle, lineterminator="\n").writerow(HEADER)
        handle.writelines(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared_etl.generate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, required=True, help="number of records")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        default=dt.date(2024, 1, 1),
        help="first UTC date (YYYY-MM-DD)",
    )
    parser.add_argument("--days", type=int, default=7, help="number of UTC dates")
    parser.add_argument("--output", required=True, help="the CSV file to write")
    args = parser.parse_args(argv)
    if args.rows < 0 or args.days < 1:
        parser.error("--rows must be >= 0 and --days >= 1")
    write_csv(args.output, generate_lines(args.rows, args.seed, args.start, args.days))
    print(f"generate: wrote {args.rows} records to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
