"""The data contract of docs/contract.md as constants: one place to change it and to read it.

Everything here is pure data. The schemas are the *only* description of the output files;
the writer refuses a table that does not match them, so a wrapper cannot drift by a type.
"""

import pyarrow as pa

REQUIRED_COLUMNS: tuple[str, ...] = (
    "event_id",
    "event_ts",
    "user_id",
    "session_id",
    "event_type",
    "amount",
    "currency",
    "country",
)

# contract §2, in rule order: the first rule a record breaks names its reject_reason.
REJECT_REASONS: tuple[str, ...] = (
    "malformed_record",
    "missing_event_id",
    "invalid_event_ts",
    "invalid_user_id",
    "missing_session_id",
    "invalid_event_type",
    "invalid_country",
    "invalid_amount",
    "invalid_currency",
)

EVENT_TYPES: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase")

# US dollars per unit of currency, in millionths (contract §3): exact integers, no floats.
RATE_MICRO: dict[str, int] = {
    "USD": 1_000_000,
    "EUR": 1_080_000,
    "GBP": 1_270_000,
    "JPY": 6_700,
}

# The whitespace trimmed from every value before any rule (contract §2): ASCII only.
TRIM_CHARACTERS = " \t\r\n"

UTC = pa.timestamp("us", tz="UTC")
REVENUE = pa.decimal128(18, 2)

METRICS_KEY: tuple[str, ...] = ("event_date", "country", "event_type")

METRICS_SCHEMA = pa.schema(
    [
        pa.field("event_date", pa.date32(), nullable=False),
        pa.field("country", pa.string(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("events", pa.int64(), nullable=False),
        pa.field("unique_users", pa.int64(), nullable=False),
        pa.field("unique_sessions", pa.int64(), nullable=False),
        pa.field("revenue_usd", REVENUE, nullable=False),
        pa.field("first_event_ts", UTC, nullable=False),
        pa.field("last_event_ts", UTC, nullable=False),
    ]
)

REJECTS_SCHEMA = pa.schema(
    [
        pa.field("source_row", pa.int64(), nullable=False),
        pa.field("reject_reason", pa.string(), nullable=False),
        *(pa.field(name, pa.string(), nullable=True) for name in REQUIRED_COLUMNS),
    ]
)

# What step `validated` hands to `metrics`: kept records, normalised, in file order.
STAGED_SCHEMA = pa.schema(
    [
        pa.field("event_date", pa.date32(), nullable=False),
        pa.field("country", pa.string(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("usd_cents", pa.int64(), nullable=False),
        pa.field("event_ts", UTC, nullable=False),
    ]
)

