"""The reference runner for any pipeline (PIPELINE= a file or a module):

    python -m parity run PIPELINE [--params JSON] [--date YYYY-MM-DD] --output-dir DIR
    python -m parity backfill PIPELINE [--params JSON] --start D1 --end D2 --output-dir DIR

One run writes DIR/<output>.parquet and DIR/manifest.json; a backfill DIR/<date>/…. Exit 0;
2 with one line for a declaration, parameter or input error; 1 when a step failed.
"""

import argparse
import datetime as dt
import os
import sys

from parity import reference
from parity.binding import bind, parse_date
from parity.errors import PipelineError, UsageError
from parity.loader import load
from parity.staging import staging_area


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m parity", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run", help="one run")
    one.add_argument("--date", help="the partition's date, YYYY-MM-DD")
    dates = commands.add_parser("backfill", help="one run per date of the partition")
    dates.add_argument("--start", required=True)
    dates.add_argument("--end", required=True)
    for command in (one, dates):
        command.add_argument("pipeline", help="a pipeline file (.py) or module name")
        command.add_argument("--params", help="a JSON object of run parameters")
        command.add_argument("--output-dir", required=True)
    args = parser.parse_args(argv)
    try:
        pipeline, folder = load(args.pipeline)
        with staging_area("parity-reference"):
            if args.command == "run":
                values = bind(pipeline, args.params, date=args.date, base_dir=os.getcwd(),
                              pipeline_dir=folder)  # fmt: skip
                written = reference.run(pipeline, values, args.output_dir)
            else:
                days = dates_between(pipeline, args.start, args.end)
                values = bind(pipeline, args.params, date=args.start, base_dir=os.getcwd(),
                              pipeline_dir=folder)  # fmt: skip
                written = reference.backfill(
                    pipeline, values, days, args.output_dir,
                )  # fmt: skip
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    what = "output(s)" if args.command == "run" else "date(s)"
    print(f"reference: {pipeline.name}: wrote {len(written)} {what} to {args.output_dir}")
    return 0


def dates_between(pipeline, start: str, end: str) -> list[dt.date]:
    if pipeline.partition is None:
        raise UsageError(f"pipeline {pipeline.name!r} has no partition, so no backfill")
    first, last = parse_date(start), parse_date(end)
    if first is None or last is None:
        raise UsageError(f"backfill dates must be YYYY-MM-DD: {start!r}, {end!r}")
    if last < first:
        raise UsageError(f"backfill end {end} is before its start {start}")
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


if __name__ == "__main__":
    sys.exit(main())
