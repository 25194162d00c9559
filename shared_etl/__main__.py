"""The reference runner: the pipeline with no orchestrator, the ground truth of every comparison.

    python -m shared_etl --input-path IN --output-path OUT [--date YYYY-MM-DD]
    python -m shared_etl --input-path IN --start D1 --end D2 --output-dir DIR

Exit 0 on success; 2 with one line on stderr for a whole-file or usage error; 1 when a step
fails. Nothing is written under an output name unless the run succeeds. No retries: a plain
runner runs each step once, which is the floor orchestrator overhead is measured from.
"""

import os
import sys

from shared_etl.cli import run_command
from shared_etl.steps import (
    aggregate,
    check_output_dir,
    check_output_path,
    dates_between,
    discard_staging,
    new_staging_dir,
    parse_date,
    prepare,
)


def run_one(input_path: str, output_path: str, date: str | None) -> None:
    _run(input_path, [(output_path, date)])


def run_backfill(input_path: str, start: str, end: str, output_dir: str) -> None:
    dates = dates_between(start, end)
    check_output_dir(output_dir)
    _run(input_path, [(os.path.join(output_dir, f"{day}.parquet"), day) for day in dates])


def _run(input_path: str, jobs: list[tuple[str, str | None]]) -> None:
    for output_path, day in jobs:  # before the input is read: a bad output fails at once
        check_output_path(output_path)
        parse_date(day)
    staging = new_staging_dir("reference")
    try:
        prepared = prepare(input_path, staging)
        print(
            f"reference: prepared {input_path}: {prepared.records_read} records, "
            f"{prepared.kept} kept, {prepared.rejected} rejected, "
            f"{prepared.duplicates} duplicates ({prepared.seconds:.2f} s)"
        )
        for output_path, day in jobs:
            result = aggregate(prepared, output_path, date=day)
            print(
                f"reference: wrote {output_path}: {result.metric_rows} metric rows, "
                f"{result.out_of_window} kept records out of window"
            )
    finally:
        discard_staging(staging)


def main(argv: list[str] | None = None) -> int:
    return run_command("python -m shared_etl", __doc__, run_one, run_backfill, argv)


if __name__ == "__main__":
    sys.exit(main())
