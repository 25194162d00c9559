"""The command line every wrapper shares, so that each is driven with the same flags:

    --input-path IN --output-path OUT [--date YYYY-MM-DD]          one run
    --input-path IN --start D1 --end D2 --output-dir DIR           a backfill, one run per date

A pipeline error ends the command with one line on stderr and its exit code (2 for a
whole-file or usage error, 1 for a failed step). The whole command holds one staging area
(staging.py): every step of the run, in this process or its children, stages inside it, and
it is removed at the end, or by a later run if this one is killed.
"""

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

from parity.staging import staging_area
from shared_etl.errors import PipelineError

RunOne = Callable[[str, str, str | None], Any]  # (input_path, output_path, date)
RunBackfill = Callable[[str, str, str, str], Any]  # (input_path, start, end, output_dir)


def run_command(
    prog: str, description: str, one: RunOne, backfill: RunBackfill, argv: list[str] | None = None
) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input-path", required=True, help="the events CSV")
    single = parser.add_argument_group("one run")
    single.add_argument("--output-path", help="the metrics Parquet file (…/name.parquet)")
    single.add_argument("--date", help="only this UTC date (YYYY-MM-DD); default all dates")
    dates = parser.add_argument_group("backfill: one file set per date")
    dates.add_argument("--start", help="first date, YYYY-MM-DD")
    dates.add_argument("--end", help="last date, YYYY-MM-DD (inclusive)")
    dates.add_argument("--output-dir", help="folder for <date>.parquet and its siblings")
    args = parser.parse_args(argv)
    backfill_args = (args.start, args.end, args.output_dir)
    if bool(args.output_path) == any(backfill_args) or (
        any(backfill_args) and not all(backfill_args)
    ):
        parser.error("give either --output-path [--date] or all of --start, --end, --output-dir")
    label = re.sub(r"[^A-Za-z0-9]+", "-", prog.split()[-1]).strip("-")
    try:
        with staging_area(label):
            if args.output_path:
                one(args.input_path, args.output_path, args.date)
            else:
                backfill(args.input_path, args.start, args.end, args.output_dir)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
