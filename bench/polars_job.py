"""The events job of docs/contract.md as Polars: `python -m bench.polars_job IN METRICS REJECTS`.

Bench-only: timed beside shared_etl, never used for outputs. Written as a data engineer who
knows Polars would write it: one lazy query per output, every core, no Python per record.

Polars cannot say how many fields a record had: a short record is padded, a long one cut
(`truncate_ragged_lines`). The bench file's malformed records (shared_etl.generate) are a
record with one field deleted or one "extra" field appended, and its `device` is never
empty, so a record is malformed here when its ninth field is empty or a tenth is present. A
blank line is read as a record of empty fields and dropped before numbering. That is the
generator's dirt, not contract §1 in general: the metrics and the reject reasons are checked
equal to shared_etl's on the bench file.
"""

import sys

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

COLUMNS = ["event_id", "event_ts", "user_id", "session_id", "event_type",
           "amount", "currency", "country", "device", "_extra"]  # fmt: skip
RATES = {"USD": 1_000_000, "EUR": 1_080_000, "GBP": 1_270_000, "JPY": 6_700}
TS_SHAPE = (
    r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
TRIM = " \t\r\n"
MICRO = 1_000_000


def main(input_path: str, metrics_path: str, rejects_path: str) -> int:
    raw = (
        pl.scan_csv(
            input_path,
            has_header=False,
            skip_rows=1,
            schema=dict.fromkeys(COLUMNS, pl.String),
            missing_columns="insert",
            truncate_ragged_lines=True,
            empty_string_is_null=False,
        )
        .filter(~pl.all_horizontal(pl.col(c) == "" for c in COLUMNS))
        .with_row_index("source_row", offset=1)
        .with_columns(pl.col("source_row").cast(pl.Int64))
    )
    checked = raw.with_columns(
        malformed=(pl.col("device") == "") | (pl.col("_extra") != ""),
        **{name: pl.col(name).str.strip_chars(TRIM) for name in COLUMNS[:8]},
    ).with_columns(
        pl.col("event_type").str.to_lowercase(),
        pl.col("country").str.to_uppercase(),
        pl.col("currency").str.to_uppercase(),
    )
    shaped = pl.col("event_ts").str.contains(TS_SHAPE)
    ts = (
        pl.when(shaped)
        .then(pl.col("event_ts").str.replace(r"Z$", "+00:00"))
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", time_zone="UTC", strict=False)
    )
    amount_ok = pl.col("amount").str.contains(r"^[0-9]{1,12}(\.[0-9]{1,2})?$")
    parts = pl.col("amount").str.split_exact(".", 1)
    cents = pl.when(amount_ok).then(
        parts.struct.field("field_0").cast(pl.Int64) * 100
        + parts.struct.field("field_1").str.pad_end(2, "0").fill_null("0").cast(pl.Int64)
    )
    is_purchase = pl.col("event_type") == "purchase"
    typed = checked.with_columns(
        ts=ts,
        user=pl.when(pl.col("user_id").str.contains(r"^[0-9]{1,18}$")).then(
            pl.col("user_id").cast(pl.Int64, strict=False)
        ),
        cents=cents,
    ).with_columns(
        ts=pl.when(pl.col("ts").dt.year().is_between(1, 9999)).then(pl.col("ts")),
    )
    reason = (
        pl.when(pl.col("malformed")).then(pl.lit("malformed_record"))
        .when(pl.col("event_id") == "").then(pl.lit("missing_event_id"))
        .when(pl.col("ts").is_null()).then(pl.lit("invalid_event_ts"))
        .when(pl.col("user").fill_null(0) <= 0).then(pl.lit("invalid_user_id"))
        .when(pl.col("session_id") == "").then(pl.lit("missing_session_id"))
        .when(~pl.col("event_type").is_in(["view", "click", "add_to_cart", "purchase"]))
        .then(pl.lit("invalid_event_type"))
        .when(~pl.col("country").str.contains(r"^[A-Z]{2}$")).then(pl.lit("invalid_country"))
        .when(is_purchase & (pl.col("cents").fill_null(0) <= 0)).then(pl.lit("invalid_amount"))
        .when(is_purchase & ~pl.col("currency").is_in(list(RATES)))
        .then(pl.lit("invalid_currency"))
    )  # fmt: skip
    validated = typed.with_columns(reject_reason=reason)

    rejects = (
        validated.filter(pl.col("reject_reason").is_not_null())
        .select("source_row", "reject_reason")
        .join(raw.select("source_row", *COLUMNS[:8]), on="source_row")
        .sort("source_row")
    )
    rejects.sink_parquet(rejects_path)

    rate = pl.col("currency").replace_strict(RATES, default=0, return_dtype=pl.Int64)
    remainder = (pl.col("cents") % MICRO) * rate
    truncated = (pl.col("cents") // MICRO) * rate + remainder // MICRO
    rest = remainder % MICRO
    usd = truncated + ((rest > MICRO // 2) | ((rest == MICRO // 2) & (truncated % 2 == 1))).cast(
        pl.Int64
    )
    metrics = (
        validated.filter(pl.col("reject_reason").is_null())
        .unique(subset="event_id", keep="first")
        .group_by(event_date=pl.col("ts").dt.date(), country="country", event_type="event_type")
        .agg(
            events=pl.len(),
            unique_users=pl.col("user").n_unique(),
            unique_sessions=pl.col("session_id").n_unique(),
            cents=pl.when(is_purchase).then(usd).otherwise(0).sum(),
            first_event_ts=pl.col("ts").min(),
            last_event_ts=pl.col("ts").max(),
        )
        .sort("event_date", "country", "event_type")
        .collect()
        .to_arrow()
    )
    revenue = pc.cast(metrics["cents"], pa.decimal128(38, 0)).combine_chunks()
    metrics = metrics.set_column(
        metrics.schema.get_field_index("cents"),
        "revenue_usd",
        pc.cast(revenue.view(pa.decimal128(38, 2)), pa.decimal128(18, 2)),
    )
    order = ["event_date", "country", "event_type", "events", "unique_users",
             "unique_sessions", "revenue_usd", "first_event_ts", "last_event_ts"]  # fmt: skip
    pq.write_table(metrics.select(order), metrics_path, compression="zstd")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
