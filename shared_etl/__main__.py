"""The reference runner: the pipeline with no orchestrator, the ground truth of every comparison.

    python -m shared_etl --input-path IN --output-path OUT [--date YYYY-MM-DD]
    python -m shared_etl --input-path IN --start D1 --end D2 --output-dir DIR

Exit 0 on success; 2 with one line on stderr for a whole-file or usage error; 1 when a step
fails. Nothing is written under an output name unless the run succeeds.
"""

import argparse
import os
import sys

from shared_etl.errors import PipelineError
from shared_etl.steps import aggregate, dates_between, discard_staging, new_staging_dir, prepare


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    backfill = (args.start, args.end, args.output_dir)
    if bool(args.output_path) == any(backfill) or (any(backfill) and not all(backfill)):
        parser.error("give either --output-path [--date] or all of --start, --end, --output-dir")
    staging = new_staging_dir()
    try:
        if args.output_path:
            jobs = [(args.output_path, args.date)]
        else:
            jobs = [
                (os.path.join(args.output_dir, f"{day}.parquet"), day)
                for day in dates_between(args.start, args.end)
            ]
        prepared = prepare(args.input_path, staging)
        print(
            f"reference: prepared {args.input_path}: {prepared.records_read} records, "
            f"{prepared.kept} kept, {prepared.rejected} rejected, "
            f"{prepared.duplicates} duplicates ({prepared.seconds:.2f} s)"
        )
        for output_path, day in jobs:
            result = aggregate(prepared, output_path, date=day)
            print(
                f"reference: wrote {output_path}: {result.metric_rows} metric rows, "
                f"{result.out_of_window} kept records out of window"
            )
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        discard_staging(staging)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shared_etl",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input-path", required=True, help="the events CSV")
    single = parser.add_argument_group("one run")
    single.add_argument("--output-path", help="the metrics Parquet file (…/name.parquet)")
    single.add_argument("--date", help="only this UTC date (YYYY-MM-DD); default all dates")
    backfill = parser.add_argument_group("backfill: one file set per date")
    backfill.add_argument("--start", help="first date, YYYY-MM-DD")
    backfill.add_argument("--end", help="last date, YYYY-MM-DD (inclusive)")
    backfill.add_argument("--output-dir", help="folder for <date>.parquet and its siblings")
    return parser


if __name__ == "__main__":
    sys.exit(main())
