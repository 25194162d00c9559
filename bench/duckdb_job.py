"""Run duckdb_job.sql on one input: `python -m bench.duckdb_job IN METRICS REJECTS`."""

import os
import string
import sys
from pathlib import Path

import duckdb


def main(input_path: str, metrics_path: str, rejects_path: str) -> int:
    template = string.Template((Path(__file__).parent / "duckdb_job.sql").read_text())
    sql = template.substitute(
        input=_quote(input_path),
        metrics=_quote(metrics_path),
        rejects=_quote(rejects_path),
        threads=os.cpu_count() or 1,
    )
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(sql)
    return 0


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
