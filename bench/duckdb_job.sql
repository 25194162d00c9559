-- The events job of docs/contract.md written as DuckDB SQL: what a data engineer would
-- otherwise reach for. Bench-only: it is timed beside shared_etl, never used for outputs.
-- Parameters (string.Template, filled by bench/duckdb_job.py): $input, $metrics, $rejects,
-- $threads, $columns (every header position as text, then spare ones past it), $last (the
-- header's last position), $spare (the first spare one) and one per required column, named
-- after it (its position).
--
-- source_row: DuckDB's ignore_errors drops a record with the wrong number of fields, so the
-- numbers after it shift, and its parallel scanner refuses null_padding beside quoted line
-- breaks. So the file is scanned serially with null_padding: a record that is short of
-- fields has null past its last one, a longer one fills the spare columns, a blank line is
-- no record (DuckDB skips it), and row_number() is the record's position. An empty field
-- stays '' (nullstr is a string no field holds), so null means "no such field".
SET threads = $threads;
CREATE TEMP TABLE raw AS
SELECT row_number() OVER () AS source_row,
       $last IS NULL OR $spare IS NOT NULL AS malformed,
       $event_id AS event_id, $event_ts AS event_ts, $user_id AS user_id,
       $session_id AS session_id, $event_type AS event_type, $amount AS amount,
       $currency AS currency, $country AS country
FROM read_csv($input, auto_detect = false, header = false, skip = 1, delim = ',',
              quote = '"', escape = '"', columns = $columns, null_padding = true,
              parallel = false, nullstr = E'\x01no field\x01');

CREATE TEMP TABLE checked AS
WITH trimmed AS (
  SELECT source_row, malformed,
         trim(coalesce(event_id, ''), E' \t\r\n') AS event_id,
         trim(coalesce(event_ts, ''), E' \t\r\n') AS event_ts,
         trim(coalesce(user_id, ''), E' \t\r\n') AS user_id,
         trim(coalesce(session_id, ''), E' \t\r\n') AS session_id,
         lower(trim(coalesce(event_type, ''), E' \t\r\n')) AS event_type,
         trim(coalesce(amount, ''), E' \t\r\n') AS amount,
         upper(trim(coalesce(currency, ''), E' \t\r\n')) AS currency,
         upper(trim(coalesce(country, ''), E' \t\r\n')) AS country
  FROM raw
), typed AS (
  SELECT *,
    CASE WHEN regexp_full_match(event_ts,
      '(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}'
      || 'T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?'
      || '(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])')
      THEN try_cast(event_ts AS TIMESTAMPTZ) END AS ts,  -- try_cast checks the calendar
    CASE WHEN regexp_full_match(amount, '[0-9]{1,12}(\.[0-9]{1,2})?')
      THEN CAST(amount AS DECIMAL(15, 2)) END AS amount_dec
  FROM trimmed
)
SELECT *,
  CASE
    WHEN malformed THEN 'malformed_record'
    WHEN event_id = '' THEN 'missing_event_id'
    WHEN ts IS NULL OR year(timezone('UTC', ts)) NOT BETWEEN 1 AND 9999 THEN 'invalid_event_ts'
    WHEN NOT regexp_full_match(user_id, '[0-9]{1,18}') OR CAST(user_id AS BIGINT) = 0
      THEN 'invalid_user_id'
    WHEN session_id = '' THEN 'missing_session_id'
    WHEN event_type NOT IN ('view', 'click', 'add_to_cart', 'purchase') THEN 'invalid_event_type'
    WHEN NOT regexp_full_match(country, '[A-Z]{2}') THEN 'invalid_country'
    WHEN event_type = 'purchase' AND (amount_dec IS NULL OR amount_dec <= 0) THEN 'invalid_amount'
    WHEN event_type = 'purchase' AND currency NOT IN ('USD', 'EUR', 'GBP', 'JPY')
      THEN 'invalid_currency'
  END AS reject_reason
FROM typed;

COPY (
  SELECT r.source_row, c.reject_reason, r.event_id, r.event_ts, r.user_id, r.session_id,
         r.event_type, r.amount, r.currency, r.country
  FROM checked c JOIN raw r USING (source_row)
  WHERE c.reject_reason IS NOT NULL ORDER BY r.source_row
) TO $rejects (FORMAT parquet);

COPY (
  WITH kept AS (
    SELECT * FROM checked WHERE reject_reason IS NULL
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY source_row) = 1
  )
  SELECT CAST(timezone('UTC', ts) AS DATE) AS event_date, country, event_type,
         count(*) AS events,
         count(DISTINCT CAST(user_id AS BIGINT)) AS unique_users,
         count(DISTINCT session_id) AS unique_sessions,
         CAST(sum(CASE WHEN event_type = 'purchase' THEN round_even(amount_dec * 100 * CASE currency
                WHEN 'USD' THEN 1000000 WHEN 'EUR' THEN 1080000 WHEN 'GBP' THEN 1270000
                ELSE 6700 END / 1000000, 0) ELSE 0 END) / 100 AS DECIMAL(18, 2)) AS revenue_usd,
         min(ts) AS first_event_ts, max(ts) AS last_event_ts
  FROM kept GROUP BY ALL ORDER BY ALL
) TO $metrics (FORMAT parquet);
