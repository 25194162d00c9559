"""SPEC §2 and §3: which rule each record breaks first, and the normalised values of the rest.

Every rule is evaluated for every record as one vectorised mask; the reason of a record is
the lowest-numbered rule whose mask fails. Rules that look at case fold ASCII only, so any
non-ASCII character makes rules 4 and 6-9 fail, as the contract says.
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
    """`reason[i]` indexes REJECT_REASONS, or is VALID; `normalised` has a row per record."""

    reason: np.ndarray
    normalised: pa.Table


def validate(records: pa.Table) -> Validated:
    """Apply rules 2-9 to well-formed records (rule 1 is decided by the CSV reader)."""
    value = {
        name: pc.utf8_trim(records[name].combine_chunks(), TRIM_CHARACTERS)
        for name in records.column_names
        if name != "source_row"
    }
    event_type = pc.ascii_lower(value["event_type"])
    country = pc.ascii_upper(value["country"])
    currency = pc.ascii_upper(value["currency"])
    is_purchase = _mask(pc.equal(event_type, "purchase"))

    ts_ok, micros = parse_instants(value["event_ts"])
    user_ok = _mask(pc.match_substring_regex(value["user_id"], r"^[0-9]{1,18}$"))
    user_id = pc.cast(pc.if_else(pa.array(user_ok), value["user_id"], "0"), pa.int64()).to_numpy()
    amount_ok, amount_cents = parse_amount_cents(value["amount"])

    passes = {
        "missing_event_id": _mask(pc.not_equal(value["event_id"], "")),
        "invalid_event_ts": ts_ok,
        "invalid_user_id": user_ok & (user_id > 0),
        "missing_session_id": _mask(pc.not_equal(value["session_id"], "")),
        "invalid_event_type": _mask(pc.is_in(event_type, value_set=pa.array(EVENT_TYPES))),
        "invalid_country": _mask(pc.match_substring_regex(country, r"^[A-Z]{2}$")),
        "invalid_amount": ~is_purchase | (amount_ok & (amount_cents > 0)),
        "invalid_currency": ~is_purchase
        | _mask(pc.is_in(currency, value_set=pa.array(list(RATE_MICRO)))),
    }
    reason = np.full(records.num_rows, VALID, dtype=np.int8)
    for name in reversed(passes):  # the first failing rule is written last, so it wins
        reason[~passes[name]] = REJECT_REASONS.index(name)

    revenue = np.where(is_purchase, usd_cents(amount_cents, currency), 0)
    normalised = pa.table(
        {
            "event_id": value["event_id"],
            "event_date": pa.array(utc_dates(micros).astype(np.int32), pa.date32()),
            "country": country,
            "event_type": event_type,
            "user_id": pa.array(user_id, pa.int64()),
            "session_id": value["session_id"],
            "usd_cents": pa.array(revenue, pa.int64()),
            "event_ts": pa.array(micros, UTC),
        }
    )
    return Validated(reason=reason, normalised=normalised)


def _mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)
