"""The bench's messy events CSV: the shape no part of the project was tuned to.

    python -m bench.messy --rows N --seed S --output PATH

Bench-only (never the committed sample). Same arguments, same bytes: one `random.Random(seed)`
drives every choice. Compared with shared_etl.generate's file it has, on purpose:

- the columns in another order, and two extra ones (`device`, `note`) full of commas,
  doubled quotes and line breaks; any field may be quoted (about one in ten), whether or
  not it needs to be;
- about 80% of the timestamps with a non-`Z` UTC offset (`-00:00` and `+14:00` included),
  most of them with a fraction of 1-6 digits;
- about 10% rejects, about 1.1% for each of the nine reasons of contract §2; rule 1's
  are mostly records with extra columns (1%), the rest records with a field missing;
- about 3% duplicates: valid records sent again (event_id kept, sometimes other values);
- mixed case and padding that normalisation must absorb, and a few blank lines.
"""

import argparse
import datetime as dt
import random
import sys
from collections.abc import Iterator

from parity.files import atomic_files

HEADER = ["event_ts", "event_id", "country", "user_id", "device", "session_id", "event_type",
          "currency", "amount", "note"]  # fmt: skip
_ORDER = {name: index for index, name in enumerate(HEADER)}

REJECT_RATE = 0.10  # of the records that are not duplicates, spread over the nine rules
DUPLICATE_RATE = 0.03
EXTRA_COLUMNS_RATE = 0.01  # rule 1 by extra columns; rule 1's other 0.11%: a missing field
QUOTE_RATE = 0.1  # a field that needs no quotes is quoted anyway
_RULE_RATE = (REJECT_RATE - EXTRA_COLUMNS_RATE) / 9  # each rule beyond the extra columns

_TYPES = ["view"] * 50 + ["click"] * 25 + ["add_to_cart"] * 10 + ["purchase"] * 15
_COUNTRIES = ["US", "GB", "DE", "FR", "JP", "BR", "IN", "CA", "AU", "NL", "MX", "ZA", "KR"]
_CURRENCIES = ["USD", "EUR", "GBP", "JPY"]
_OFFSETS = ["+01:00", "+02:00", "-05:00", "-08:00", "+05:30", "+09:00", "-03:30", "+05:45",
            "-00:00", "+00:00", "+14:00", "-11:00", "+12:45", "-09:30"]  # fmt: skip
_DEVICES = ["web", "ios", "android", 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) "Edge"',
            "kiosk, lobby", "tv\r\nliving room"]  # fmt: skip
_NOTES = ["", "", "", "ok", 'said "hi", left', "line one\nline two", "a,b,c", '""', " , "]
_BAD_TS = ["2024-02-30T10:00:00+01:00", "2024-03-01 10:00:00Z", "2024-03-01T24:00:00-05:00",
           "2024-03-01T10:00:00+0530", "2024-03-01T10:00:00", "2024-03-01T10:00:00.1234567Z",
           "2024-03-01T10:00:00+24:00", "2024-03-01T10:00:60Z", "0000-01-01T00:00:00Z",
           "0001-01-01T00:30:00+01:00", "01/03/2024", "", "2023-02-29T00:00:00Z"]  # fmt: skip
_BAD_USER = ["0", "00", "-3", "7x", "12345678901234567890", "", "1.0", "١٢", "+5"]
_BAD_TYPE = ["login", "views", "", "purchase!", "purchase\u0130", "add-to-cart"]
_BAD_COUNTRY = ["USA", "u", "", "1A", "ÉS", "U S", "us1"]
_BAD_AMOUNT = ["", "0", "0.0", "-1.00", "1.234", "1,00", "abc", "1234567890123", ".99", "1."]
_BAD_CURRENCY = ["", "CHF", "us d", "U$D", "€", "DOLLAR"]
_PAD = [" ", "\t", "  ", " \t"]


def generate_lines(rows: int, seed: int, start: dt.date, days: int) -> Iterator[str]:
    """`rows` records as CSV lines (without the header); a blank line is "\\n" and no record."""
    rng = random.Random(seed)
    origin = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    span = days * 86_400
    users = max(10, rows // 25)
    recent: list[list[str]] = []  # valid records a duplicate may re-send (a bounded ring)
    for number in range(rows):
        if recent and rng.random() < DUPLICATE_RATE:
            copy = list(rng.choice(recent))
            if rng.random() < 0.3:
                copy[_ORDER["session_id"]] += "-again"
            yield _line(rng, copy)
            continue
        if rng.random() < 0.001:
            yield "\n"
        record = _record(rng, number, seed, origin, span, users)
        roll = rng.random()
        if roll < EXTRA_COLUMNS_RATE:
            record += ["extra"] * rng.randint(1, 3)
        elif roll < REJECT_RATE:
            _break(rng, record, int((roll - EXTRA_COLUMNS_RATE) / _RULE_RATE) + 1)
        elif len(recent) < 100_000:
            recent.append(record)
        else:
            recent[rng.randrange(len(recent))] = record
        yield _line(rng, record)


def _record(
    rng: random.Random, number: int, seed: int, origin: dt.datetime, span: int, users: int
) -> list[str]:
    instant = origin + dt.timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(10**6))
    user = rng.randint(1, users)
    event_type = rng.choice(_TYPES)
    currency = rng.choice(_CURRENCIES)
    amount = _amount(rng, currency)
    if event_type != "purchase" and rng.random() < 0.5:  # ignored unless a purchase
        currency, amount = rng.choice(["", "XXX", currency]), rng.choice(["", "n/a", amount])
    fields = {
        "event_ts": _timestamp(rng, instant),
        "event_id": f"m{seed}-{number:010d}",
        "country": _case(rng, rng.choice(_COUNTRIES)),
        "user_id": str(user) if rng.random() < 0.95 else f"{user:07d}",
        "device": rng.choice(_DEVICES),
        "session_id": f"u{user}/s{rng.randint(1, 6)}",
        "event_type": _case(rng, event_type),
        "currency": _case(rng, currency),
        "amount": amount,
        "note": rng.choice(_NOTES),
    }
    if rng.random() < 0.05:
        name = rng.choice(HEADER[:-2])
        fields[name] = rng.choice(_PAD) + fields[name] + rng.choice(["", *_PAD])
    return [fields[name] for name in HEADER]


def _timestamp(rng: random.Random, instant: dt.datetime) -> str:
    if rng.random() < 0.2:
        local, suffix = instant, "Z"
    else:
        suffix = rng.choice(_OFFSETS)
        sign = -1 if suffix[0] == "-" else 1
        local = instant + sign * dt.timedelta(hours=int(suffix[1:3]), minutes=int(suffix[4:6]))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    digits = rng.choice([0, 1, 2, 3, 3, 6, 6, 6])
    if digits:
        text += "." + f"{local.microsecond:06d}"[:digits]
    return text + suffix


def _amount(rng: random.Random, currency: str) -> str:
    if currency == "JPY":
        return str(rng.randint(1, 900_000))
    cents = rng.randint(1, 2_000_000)
    return rng.choice([f"{cents // 100}.{cents % 100:02d}", f"{cents // 10}.{cents % 10}",
                       str(cents // 100 or 1)])  # fmt: skip


def _case(rng: random.Random, text: str) -> str:
    roll = rng.random()
    return text.lower() if roll < 0.1 else text.title() if roll < 0.15 else text


def _break(rng: random.Random, record: list[str], rule: int) -> None:
    """Make `record` break contract §2 rule `rule` (1-9) and no earlier one."""
    if rule == 1:
        del record[rng.randrange(len(record))]
    elif rule == 2:
        record[_ORDER["event_id"]] = rng.choice(["", " ", "\t"])
    elif rule == 3:
        record[_ORDER["event_ts"]] = rng.choice(_BAD_TS)
    elif rule == 4:
        record[_ORDER["user_id"]] = rng.choice(_BAD_USER)
    elif rule == 5:
        record[_ORDER["session_id"]] = rng.choice(["", "  ", "\r\n"])
    elif rule == 6:
        record[_ORDER["event_type"]] = rng.choice(_BAD_TYPE)
    elif rule == 7:
        record[_ORDER["country"]] = rng.choice(_BAD_COUNTRY)
    else:
        record[_ORDER["event_type"]] = rng.choice(["purchase", "PURCHASE", " Purchase"])
        currency = rng.choice(_CURRENCIES)
        record[_ORDER["currency"]] = currency
        record[_ORDER["amount"]] = _amount(rng, currency)
        if rule == 8:
            record[_ORDER["amount"]] = rng.choice(_BAD_AMOUNT)
        else:
            record[_ORDER["currency"]] = rng.choice(_BAD_CURRENCY)


def _line(rng: random.Random, fields: list[str]) -> str:
    return ",".join(_quoted(rng, value) for value in fields) + "\n"


def _quoted(rng: random.Random, value: str) -> str:
    if any(c in value for c in ',"\r\n') or rng.random() < QUOTE_RATE:
        return '"' + value.replace('"', '""') + '"'
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.messy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, required=True, help="number of records")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2024, 3, 1))
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--output", required=True, help="the CSV file to write")
    args = parser.parse_args(argv)
    if args.rows < 0 or args.days < 1:
        parser.error("--rows must be >= 0 and --days >= 1")
    with (
        atomic_files(args.output) as (temporary,),
        open(temporary, "w", encoding="utf-8", newline="", buffering=1 << 20) as handle,
    ):
        handle.write(",".join(HEADER) + "\n")
        handle.writelines(generate_lines(args.rows, args.seed, args.start, args.days))
    print(f"bench.messy: wrote {args.rows} records to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
