"""Contract §3 and §4: UTC instants and dates, case, revenue in cents, and de-duplication."""

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from shared_etl.contract import RATE_MICRO
from tests.conftest import csv_line

UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2024-01-01T10:00:00Z", dt.datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01T23:30:00-05:00", dt.datetime(2024, 1, 2, 4, 30, tzinfo=UTC)),
        ("2024-01-01T03:00:00+05:30", dt.datetime(2023, 12, 31, 21, 30, tzinfo=UTC)),
        ("2024-03-01T00:10:00+00:20", dt.datetime(2024, 2, 29, 23, 50, tzinfo=UTC)),
        ("2024-01-01T10:00:00.5Z", dt.datetime(2024, 1, 1, 10, 0, 0, 500_000, tzinfo=UTC)),
        ("2024-01-01T10:00:00.000001Z", dt.datetime(2024, 1, 1, 10, 0, 0, 1, tzinfo=UTC)),
        ("1969-12-31T23:59:59.999999Z", dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", dt.datetime(1, 1, 1, tzinfo=UTC)),
        ("2024-12-31T23:00:00-23:59", dt.datetime(2025, 1, 1, 22, 59, tzinfo=UTC)),
    ],
)
def test_event_ts_becomes_a_utc_instant_and_event_date_its_utc_date(
    write_csv, prepare_file, text, instant
):
    kept = prepare_file(write_csv([csv_line(event_ts=text)])).kept.to_pylist()[0]
    assert kept["event_ts"] == instant
    assert kept["event_date"] == instant.date()


def test_case_is_folded_ascii_only_and_values_trimmed(write_csv, prepare_file):
    path = write_csv(
        [
            csv_line(
                event_type=" Add_To_CART\t", country=" fr ", session_id="  Sess  ", user_id="007"
            )
        ]
    )
    kept = prepare_file(path).kept.to_pylist()[0]
    assert (kept["event_type"], kept["country"], kept["session_id"], kept["user_id"]) == (
        "add_to_cart",
        "FR",
        "Sess",
        7,
    )


def _oracle_cents(amount: str, currency: str) -> int:
    """An independent oracle: decimal arithmetic with Python's own half-even rounding."""
    usd = Decimal(amount) * 100 * Decimal(RATE_MICRO[currency]) / Decimal(1_000_000)
    return int(usd.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@pytest.mark.parametrize(
    ("amount", "currency", "cents"),
    [
        ("12.50", "EUR", 1350),
        ("0.50", "GBP", 64),  # 63.5 -> 64: tie, rounds up to even
        ("1.50", "GBP", 190),  # 190.5 -> 190: tie, rounds down to even
        ("2.50", "GBP", 318),  # 317.5 -> 318
        ("1500", "JPY", 1005),  # 150000 "cents" x 0.0067 = 1005
        ("1", "JPY", 1),  # 0.67 -> 1
        ("0.01", "JPY", 0),  # 0.0067 -> 0
        ("999999999999.99", "GBP", 126999999999999),  # 126999999999998.73
        ("7", "USD", 700),
        ("0.05", "EUR", 5),  # 5.4 -> 5
    ],
)
def test_revenue_is_exact_cents_rounded_half_even_per_record(
    write_csv, prepare_file, amount, currency, cents
):
    assert _oracle_cents(amount, currency) == cents
    path = write_csv([csv_line(event_type="purchase", amount=amount, currency=currency)])
    assert prepare_file(path).kept.column("usd_cents").to_pylist() == [cents]


def test_half_even_agrees_with_decimal_on_every_tie_in_a_sweep(write_csv, prepare_file):
    amounts = [f"{cents // 100}.{cents % 100:02d}" for cents in range(1, 20_001, 7)]
    currencies = list(RATE_MICRO)
    lines = [
        csv_line(event_id=f"e{n}", event_type="purchase", amount=amount, currency=currencies[n % 4])
        for n, amount in enumerate(amounts)
    ]
    got = prepare_file(write_csv(lines)).kept.column("usd_cents").to_pylist()
    assert got == [_oracle_cents(a, currencies[n % 4]) for n, a in enumerate(amounts)]


def test_non_purchases_have_no_revenue_whatever_their_amount(write_csv, prepare_file):
    path = write_csv([csv_line(event_type="click", amount="99.00", currency="USD")])
    assert prepare_file(path).kept.column("usd_cents").to_pylist() == [0]


def test_the_first_valid_occurrence_of_an_event_id_wins(write_csv, prepare_file):
    path = write_csv(
        [
            csv_line(event_id="a", user_id="0"),  # rejected: not a candidate for de-duplication
            csv_line(event_id="a", session_id="first"),
            csv_line(event_id="b"),
            csv_line(event_id=" a ", session_id="second"),  # trimmed, the same event_id
            csv_line(event_id="A", session_id="other"),  # case matters in ids
            csv_line(event_id="a", session_id="third", event_ts="2024-02-01T00:00:00Z"),
        ]
    )
    prepared = prepare_file(path)
    assert prepared.kept.column("session_id").to_pylist() == ["first", "s1", "other"]
    assert prepared.duplicates == 2
    assert prepared.rejected == 1
    assert prepared.records_read == 6
