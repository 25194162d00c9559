"""Run duckdb_job.sql on one input: `python -m bench.duckdb_job IN METRICS REJECTS`.

The header is read here (Python's csv, its first record) so that the SQL can take each
required column by its position, whatever order the file gives them in, and count fields.
"""

import csv
import os
import string
import sys
from pathlib import Path

import duckdb

REQUIRED = ("event_id", "event_ts", "user_id", "session_id", "event_type",
            "amount", "currency", "country")  # fmt: skip
SPARE = 16  # columns past the header's: a record with more fields than that fails the run


def main(input_path: str, metrics_path: str, rejects_path: str) -> int:
    with open(input_path, encoding="utf-8-sig", newline="") as handle:
        header = [name.strip(" \t\r\n") for name in next(csv.reader(handle))]
    width = len(header)
    names = [f"c{i}" for i in range(width + SPARE)]
    template = string.Template((Path(__file__).parent / "duckdb_job.sql").read_text())
    sql = template.substitute(
        input=_quote(input_path),
        metrics=_quote(metrics_path),
        rejects=_quote(rejects_path),
        threads=os.cpu_count() or 1,
        columns="{" + ", ".join(f"{_quote(name)}: 'VARCHAR'" for name in names) + "}",
        last=names[width - 1],
        spare=names[width],
        **{name: names[header.index(name)] for name in REQUIRED},
    )
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(sql)
    return 0


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
