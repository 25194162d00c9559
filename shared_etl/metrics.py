"""Contract §5 and §6: the daily metrics of the kept events, optionally for one UTC date."""

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from shared_etl.contract import METRICS_KEY, METRICS_SCHEMA, REVENUE
from shared_etl.errors import RevenueOverflowError

_WIDE_REVENUE = pa.decimal128(38, 2)  # the same 16-byte integers as decimal128(38, 0)


def rows_in_window(kept: pa.Table, date: dt.date | None) -> pa.Table:
    """The kept events of one UTC date, or all of them when no date is named."""
    if date is None:
        return kept
    return kept.filter(pc.equal(kept["event_date"], pa.scalar(date, pa.date32())))


def daily_metrics(events: pa.Table) -> pa.Table:
    """One row per (event_date, country, event_type), sorted by those three.

    Revenue is summed as decimals (integer cents reinterpreted at scale 2) at precision 38:
    exact, and a sum that overflows decimal128(18, 2) fails the final, checked cast.
    The two distinct counts are the memory-hungry aggregations, so each runs in a pass of
    its own, serially, over dictionary-encoded keys: the peak is one hash state, not three.
    """
    cents = pc.cast(events["usd_cents"], pa.decimal128(38, 0))
    revenue = pa.chunked_array([chunk.view(_WIDE_REVENUE) for chunk in cents.chunks], _WIDE_REVENUE)
    sums = _per_group(
        events,
        {"revenue": revenue, "event_ts": events["event_ts"]},
        [([], "count_all"), ("revenue", "sum"), ("event_ts", "min"), ("event_ts", "max")],
    )
    users = _per_group(events, {"user_id": events["user_id"]}, [("user_id", "count_distinct")])
    sessions = _per_group(
        events, {"session_id": events["session_id"]}, [("session_id", "count_distinct")]
    )
    try:
        revenue_usd = pc.cast(sums["revenue_sum"].fill_null(0), REVENUE)
    except pa.ArrowInvalid as exc:
        raise RevenueOverflowError(
            f"a daily revenue sum does not fit decimal128(18, 2): {exc}"
        ) from None
    return pa.table(
        {
            **{name: sums[name] for name in METRICS_KEY},
            "events": sums["count_all"],
            "unique_users": users["user_id_count_distinct"],
            "unique_sessions": sessions["session_id_count_distinct"],
            "revenue_usd": revenue_usd,
            "first_event_ts": sums["event_ts_min"],
            "last_event_ts": sums["event_ts_max"],
        }
    ).cast(METRICS_SCHEMA)


def _per_group(events: pa.Table, values: dict, aggregations: list) -> pa.Table:
    """`aggregations` of `values` per metrics key, keys as plain strings, sorted by the keys."""
    keys = {
        "event_date": events["event_date"],
        "country": pc.dictionary_encode(events["country"]),
        "event_type": pc.dictionary_encode(events["event_type"]),
    }
    grouped = (
        pa.table({**keys, **values})
        .group_by(list(METRICS_KEY), use_threads=False)
        .aggregate(aggregations)
    )
    for name in ("country", "event_type"):
        grouped = grouped.set_column(
            grouped.schema.get_field_index(name), name, pc.cast(grouped[name], pa.string())
        )
    return grouped.sort_by([(name, "ascending") for name in METRICS_KEY])
