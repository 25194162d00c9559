"""The events command line of `python -m shared_etl` and the deployed events wrappers (the
flags parity.cli.parse_seed reads, as every adapter takes them without a subcommand):

    --input-path IN --output-path OUT [--date YYYY-MM-DD]          one run
    --input-path IN --start D1 --end D2 --output-dir DIR           a backfill, one run per date

A pipeline error ends the command with one line on stderr and its exit code (2 for a
whole-file or usage error, 1 for a failed step). The whole command holds one staging area
(staging.py): every step of the run, in this process or its children, stages inside it, and
it is removed at the end, or by a later run if this one is killed.
"""

import re
import sys
from collections.abc import Callable
from typing import Any

from parity.cli import parse_seed
from parity.staging import staging_area
from shared_etl.errors import PipelineError

RunOne = Callable[[str, str, str | None], Any]  # (input_path, output_path, date)
RunBackfill = Callable[[str, str, str, str], Any]  # (input_path, start, end, output_dir)


def run_command(
    prog: str, description: str, one: RunOne, backfill: RunBackfill, argv: list[str] | None = None
) -> int:
    _, args = parse_seed(prog, description, argv)
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
