"""Contract §2: every rule, its reason, its boundaries, and the order the rules are applied in."""

import pytest

from tests.conftest import csv_line

PURCHASE = {"event_type": "purchase", "amount": "10.00", "currency": "USD"}

REJECTED = [
    # (changes to a valid record, reject_reason)
    ({"event_id": ""}, "missing_event_id"),
    ({"event_id": " \t "}, "missing_event_id"),
    ({"event_ts": ""}, "invalid_event_ts"),
    ({"event_ts": "2024-01-01 10:00:00Z"}, "invalid_event_ts"),
    ({"event_ts": "2024-01-01T10:00:00"}, "invalid_event_ts"),
    ({"event_ts": "2024-01-01T10:00Z"}, "invalid_event_ts"),
    ({"event_ts": "2024-01-01T10:00:00+0100"}, "invalid_event_ts"),
    ({"event_ts": "2024-01-01T10:00:00.1234567Z"}, "invalid_event_ts"),
    ({"event_ts": "2024-01-01T10:00:00.Z"}, "invalid_event_ts"),
    ({"event_ts": "2023-02-29T10:00:00Z"}, "invalid_event_ts"),
    ({"event_ts": "1900-02-29T10:00:00Z"}, "invalid_event_ts"),
    ({"event_ts": "2024-04-31T10:00:00Z"}, "invalid_event_ts"),
    ({"event_ts": "2024-13-01T10:00:00Z"}, "invalid_event_ts"),
    ({"event_ts": "2024-00-01T10:00:00Z"}, "invalid_event_ts"),
    ({"event_ts": "2024-01-00T10:00:00Z"}, "invalid_event_ts"),
    ({"event_ts": "0000-01-01T10:00:00Z"}, "invalid_event_ts"),
    ({"event_ts": "2024-01-01T24:00:00Z"}, "invalid_event_ts"),
    ({"event_ts": "2024-01-01T10:60:00Z"}, "invalid_event_ts"),
    ({"event_ts": "2024-01-01T10:00:60Z"}, "invalid_event_ts"),
    ({"event_ts": "2024-01-01T10:00:00+24:00"}, "invalid_event_ts"),
    ({"event_ts": "2024-01-01T10:00:00-05:60"}, "invalid_event_ts"),
    ({"event_ts": "2024-01-01T10:00:00z"}, "invalid_event_ts"),
    ({"event_ts": "２024-01-01T10:00:00Z"}, "invalid_event_ts"),
    ({"user_id": ""}, "invalid_user_id"),
    ({"user_id": "0"}, "invalid_user_id"),
    ({"user_id": "0000"}, "invalid_user_id"),
    ({"user_id": "-5"}, "invalid_user_id"),
    ({"user_id": "+5"}, "invalid_user_id"),
    ({"user_id": "5.0"}, "invalid_user_id"),
    ({"user_id": "1234567890123456789"}, "invalid_user_id"),
    ({"user_id": "٣"}, "invalid_user_id"),
    ({"user_id": "1 2"}, "invalid_user_id"),
    ({"session_id": ""}, "missing_session_id"),
    ({"session_id": "\r\n"}, "missing_session_id"),
    ({"event_type": ""}, "invalid_event_type"),
    ({"event_type": "login"}, "invalid_event_type"),
    ({"event_type": "add to cart"}, "invalid_event_type"),
    ({"event_type": "vıew"}, "invalid_event_type"),
    ({"event_type": "ＶＩＥＷ"}, "invalid_event_type"),
    ({"country": ""}, "invalid_country"),
    ({"country": "USA"}, "invalid_country"),
    ({"country": "U"}, "invalid_country"),
    ({"country": "U1"}, "invalid_country"),
    ({"country": "ÜS"}, "invalid_country"),
    ({"country": "U S"}, "invalid_country"),
    ({**PURCHASE, "amount": ""}, "invalid_amount"),
    ({**PURCHASE, "amount": "0"}, "invalid_amount"),
    ({**PURCHASE, "amount": "0.00"}, "invalid_amount"),
    ({**PURCHASE, "amount": "-1.00"}, "invalid_amount"),
    ({**PURCHASE, "amount": "1.234"}, "invalid_amount"),
    ({**PURCHASE, "amount": ".5"}, "invalid_amount"),
    ({**PURCHASE, "amount": "5."}, "invalid_amount"),
    ({**PURCHASE, "amount": "1,5"}, "invalid_amount"),
    ({**PURCHASE, "amount": "1e3"}, "invalid_amount"),
    ({**PURCHASE, "amount": "1234567890123"}, "invalid_amount"),
    ({**PURCHASE, "amount": "١٠"}, "invalid_amount"),
    ({**PURCHASE, "currency": ""}, "invalid_currency"),
    ({**PURCHASE, "currency": "CHF"}, "invalid_currency"),
    ({**PURCHASE, "currency": "US D"}, "invalid_currency"),
    ({**PURCHASE, "currency": "ＵＳＤ"}, "invalid_currency"),
]

ACCEPTED = [
    {"event_id": "  padded\t"},
    {"event_ts": "2024-02-29T23:59:59Z"},
    {"event_ts": "2000-02-29T00:00:00Z"},
    {"event_ts": "0001-01-01T00:00:00Z"},
    {"event_ts": "9999-12-31T23:59:59.999999Z"},
    {"event_ts": "2024-01-01T10:00:00.5+23:59"},
    {"event_ts": "2024-01-01T10:00:00-00:00"},
    {"event_ts": " 2024-01-01T10:00:00Z\t"},
    {"user_id": "123456789012345678"},
    {"user_id": "007"},
    {"event_type": "Add_To_Cart"},
    {"event_type": " CLICK "},
    {"country": "gb"},
    {"country": " De "},
    {"amount": "not a number", "currency": "nope"},  # ignored for non-purchases
    {**PURCHASE, "amount": "0.01"},
    {**PURCHASE, "amount": "999999999999.99"},
    {**PURCHASE, "amount": " 12 ", "currency": " eur "},
    {**PURCHASE, "event_type": "PURCHASE", "currency": "jpy", "amount": "1500"},
]


@pytest.mark.parametrize(("changes", "reason"), REJECTED, ids=[str(c) for c, _ in REJECTED])
def test_a_record_breaking_one_rule_is_quarantined_with_that_reason(
    write_csv, prepare_file, changes, reason
):
    prepared = prepare_file(write_csv([csv_line(event_id="good"), csv_line(**changes)]))
    assert prepared.rejects.select(["source_row", "reject_reason"]).to_pylist() == [
        {"source_row": 2, "reject_reason": reason}
    ]
    assert prepared.kept.num_rows == 1


@pytest.mark.parametrize("changes", ACCEPTED, ids=[str(c) for c in ACCEPTED])
def test_a_record_on_the_edge_of_every_rule_is_kept(write_csv, prepare_file, changes):
    prepared = prepare_file(write_csv([csv_line(**changes)]))
    assert prepared.rejects.num_rows == 0
    assert prepared.kept.num_rows == 1


def test_the_first_broken_rule_names_the_reason(write_csv, prepare_file):
    """Record k breaks rules k..9; its reason must be rule k's."""
    broken = [
        ("event_id", "", "missing_event_id"),
        ("event_ts", "x", "invalid_event_ts"),
        ("user_id", "x", "invalid_user_id"),
        ("session_id", "", "missing_session_id"),
        ("event_type", "x", "invalid_event_type"),
        ("country", "x", "invalid_country"),
        ("amount", "x", "invalid_amount"),
        ("currency", "x", "invalid_currency"),
    ]
    lines = []
    for first in range(len(broken)):
        changes = {**PURCHASE, **{name: bad for name, bad, _ in broken[first:]}}
        lines.append(csv_line(**changes))
    reasons = prepare_file(write_csv(lines)).rejects.column("reject_reason").to_pylist()
    assert reasons == [reason for _, _, reason in broken]


def test_the_quarantine_keeps_the_raw_untrimmed_text(write_csv, prepare_file):
    raw = {"event_id": " e9 ", "user_id": " 0 ", "country": "\tus", "event_type": "View"}
    rejects = prepare_file(write_csv([csv_line(**raw)])).rejects.to_pylist()
    assert rejects == [
        {
            "source_row": 1,
            "reject_reason": "invalid_user_id",
            "event_id": " e9 ",
            "event_ts": "2024-01-01T10:00:00Z",
            "user_id": " 0 ",
            "session_id": "s1",
            "event_type": "View",
            "amount": "",
            "currency": "",
            "country": "\tus",
        }
    ]


def test_years_0001_to_9999_hold_as_written_and_once_moved_to_utc(write_csv, prepare_file):
    """A minute of offset moves an instant across either end of the range, or keeps it in."""
    event_ts = {
        "0001-01-01T00:00:00+00:01": "invalid_event_ts",  # 0000-12-31T23:59:00Z
        "0001-01-01T00:00:00-00:01": None,  # 0001-01-01T00:01:00Z
        "0001-01-01T00:01:00+00:01": None,  # 0001-01-01T00:00:00Z, the first instant
        "9999-12-31T23:59:59-00:01": "invalid_event_ts",  # 10000-01-01T00:00:59Z
        "9999-12-31T23:59:59+00:01": None,  # 9999-12-31T23:58:59Z
        "9999-12-31T23:58:59.999999-00:01": None,  # 9999-12-31T23:59:59.999999Z, the last
    }
    lines = [csv_line(event_id=f"e{n}", event_ts=text) for n, text in enumerate(event_ts, 1)]
    prepared = prepare_file(write_csv(lines))
    expected = [
        {"source_row": row, "reject_reason": reason}
        for row, reason in enumerate(event_ts.values(), 1)
        if reason
    ]
    assert prepared.rejects.select(["source_row", "reject_reason"]).to_pylist() == expected
    assert prepared.kept.num_rows == 4
    assert {d.year for d in prepared.kept.column("event_date").to_pylist()} == {1, 9999}
