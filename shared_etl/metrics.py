"""SPEC §5 and §6: the daily metrics of the kept events, optionally for one UTC date."""

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
    """
    cents = pc.cast(events["usd_cents"], pa.decimal128(38, 0))
    revenue = pa.chunked_array([chunk.view(_WIDE_REVENUE) for chunk in cents.chunks], _WIDE_REVENUE)
    grouped = (
        events.append_column("revenue", revenue)
        .group_by(list(METRICS_KEY))
        .aggregate(
            [
                ([], "count_all"),
                ("user_id", "count_distinct"),
                ("session_id", "count_distinct"),
                ("revenue", "sum"),
                ("event_ts", "min"),
                ("event_ts", "max"),
            ]
        )
    )
    try:
        revenue_usd = pc.cast(grouped["revenue_sum"].fill_null(0), REVENUE)
    except pa.ArrowInvalid as exc:
        raise RevenueOverflowError(
            f"a daily revenue sum does not fit decimal128(18, 2): {exc}"
        ) from None
    table = pa.table(
        {
            "event_date": grouped["event_date"],
            "country": grouped["country"],
            "event_type": grouped["event_type"],
            "events": grouped["count_all"],
            "unique_users": grouped["user_id_count_distinct"],
            "unique_sessions": grouped["session_id_count_distinct"],
            "revenue_usd": revenue_usd,
            "first_event_ts": grouped["event_ts_min"],
            "last_event_ts": grouped["event_ts_max"],
        }
    )
    return table.sort_by([(name, "ascending") for name in METRICS_KEY]).cast(METRICS_SCHEMA)
