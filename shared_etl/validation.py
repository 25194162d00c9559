"""Contract §2 and §3: which rule each record breaks first, and the normalised values of the rest.

Every rule is evaluated for every record as one vectorised mask; the reason of a record is
the lowest-numbered rule whose mask fails. Rules that look at case fold ASCII only, so any
non-ASCII character makes rules 4 and 6-9 fail, as the contract says. Columns are taken one
at a time so that their trimmed copies are freed as soon as they are decided.
"""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shared_etl.contract import EVENT_TYPES, RATE_MICRO, REJECT_REASONS, TRIM_CHARACTERS, UTC
from shared_etl.revenue import parse_amount_cents, usd_cents
from shared_etl.timestamps import parse_instants, utc_dates

VALID = -1  # the reason index of a record that breaks no rule


@dataclass(frozen=True)
class Validated:
    """`reason[i]` indexes REJECT_REASONS or is VALID; `valid` holds the valid records only,
    normalised, in file order, with their trimmed `event_id`."""

    reason: np.ndarray
    valid: pa.Table


def validate(records: pa.Table) -> Validated:
    """Apply rules 2-9 to well-formed records (rule 1 is decided by the CSV reader)."""

    def trimmed(name: str) -> pa.ChunkedArray:
        return pc.utf8_trim(records[name], TRIM_CHARACTERS)

    event_id = trimmed("event_id")
    session_id = trimmed("session_id")
    event_type = pc.ascii_lower(trimmed("event_type"))
    country = pc.ascii_upper(trimmed("country"))
    is_purchase = _mask(pc.equal(event_type, "purchase"))
    ts_ok, micros = parse_instants(trimmed("event_ts"))
    user_ok, user_id = _parse_user_ids(trimmed("user_id"))
    amount_ok, amount_cents = _purchase_amounts(records["amount"], is_purchase)
    currency = pc.ascii_upper(trimmed("currency"))

    passes = {
        "missing_event_id": _mask(pc.not_equal(event_id, "")),
        "invalid_event_ts": ts_ok,
        "invalid_user_id": user_ok,
        "missing_session_id": _mask(pc.not_equal(session_id, "")),
        "invalid_event_type": _mask(pc.is_in(event_type, value_set=pa.array(EVENT_TYPES))),
        "invalid_country": _mask(pc.match_substring_regex(country, r"^[A-Z]{2}$")),
        "invalid_amount": ~is_purchase | (amount_ok & (amount_cents > 0)),
        "invalid_currency": ~is_purchase
        | _mask(pc.is_in(currency, value_set=pa.array(list(RATE_MICRO)))),
    }
    reason = np.full(records.num_rows, VALID, dtype=np.int8)
    for name in reversed(passes):  # the first failing rule is written last, so it wins
        reason[~passes[name]] = REJECT_REASONS.index(name)

    keep = reason == VALID
    keep_arrow = pa.array(keep)
    revenue = np.where(
        is_purchase[keep], usd_cents(amount_cents[keep], currency.filter(keep_arrow)), 0
    )
    valid = pa.table(
        {
            "event_id": event_id.filter(keep_arrow),
            "event_date": pa.array(utc_dates(micros[keep]).astype(np.int32), pa.date32()),
            "country": country.filter(keep_arrow),
            "event_type": event_type.filter(keep_arrow),
            "user_id": pa.array(user_id[keep], pa.int64()),
            "session_id": session_id.filter(keep_arrow),
            "usd_cents": pa.array(revenue, pa.int64()),
            "event_ts": pa.array(micros[keep], UTC),
        }
    )
    return Validated(reason=reason, valid=valid)


def _parse_user_ids(text: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Rule 4: 1-18 ASCII digits (so it fits int64) with a value > 0."""
    digits = pc.match_substring_regex(text, r"^[0-9]{1,18}$")
    value = pc.cast(pc.if_else(digits, text, "0"), pa.int64()).to_numpy()
    return _mask(digits) & (value > 0), value


def _purchase_amounts(
    amount: pa.ChunkedArray, is_purchase: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rule 8's (matches, cents) of the purchases; other records hold (False, 0).

    Only purchases are judged by their amount (about one record in twenty), so only their
    amounts are parsed: a regex over every record cost more than the rest of rule 8.
    """
    purchases = np.flatnonzero(is_purchase)
    matched = np.zeros(len(is_purchase), dtype=bool)
    cents = np.zeros(len(is_purchase), dtype=np.int64)
    if purchases.size:
        text = pc.utf8_trim(amount.take(pa.array(purchases)), TRIM_CHARACTERS)
        matched[purchases], cents[purchases] = parse_amount_cents(text)
    return matched, cents


def _mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)
