"""`make bench`: shared_etl against DuckDB SQL and pyarrow's bare CSV read, on 2M records."""
