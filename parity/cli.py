"""The command line every wrapper of a declared pipeline shares (`python -m parity` and each
orchestrator's adapter), so each is driven with the same arguments and fails the same way:

    <prog> run PIPELINE [--params JSON] [--date YYYY-MM-DD] --output-dir DIR
    <prog> backfill PIPELINE [--params JSON] --start D1 --end D2 --output-dir DIR

DIR is a folder, or a file P.parquet (parity.layout); a backfill's holds {date} for each date.
Without a command, the events pipeline's own command line (contract §8), the same in every
wrapper, runs the default pipeline in the file layout of contract §6:

    <prog> --input-path IN --output-path OUT.parquet [--date YYYY-MM-DD]
    <prog> --input-path IN --start D1 --end D2 --output-dir DIR     # DIR/<date>.parquet …

PIPELINE is a file path or a module name. Parameters are bound (parity.binding) before any
orchestrator is asked to run anything. A pipeline error ends the command with one line on
stderr and its exit code; the whole command holds one staging area (parity.staging).
"""

import argparse
import datetime as dt
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from parity import layout
from parity.binding import bind, parse_date
from parity.declaration import Pipeline
from parity.errors import PipelineError, UsageError
from parity.faults import FAIL_ATTEMPTS, FAIL_STEP
from parity.loader import load
from parity.registry import DEFAULT_PIPELINE
from parity.staging import staging_area

Values = Mapping[str, object]
RunOne = Callable[[Pipeline, Values, str], Any]  # (pipeline, values, output_dir)
RunBackfill = Callable[[Pipeline, Values, Sequence[dt.date], str], Any]  # (…, dates, output_dir)


def run_command(prog: str, description: str, one: RunOne, backfill: RunBackfill,
                argv: list[str] | None = None) -> int:  # fmt: skip
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].startswith("--") and argv[0] not in ("--help", "-h"):
        argv = seed_arguments(prog, description, argv)
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    single = commands.add_parser("run", help="one run into DIR")
    single.add_argument("--date", help="the partition's date, YYYY-MM-DD")
    dates = commands.add_parser("backfill", help="one run per date, into DIR/<date>/")
    dates.add_argument("--start", required=True, help="first date, YYYY-MM-DD")
    dates.add_argument("--end", required=True, help="last date, YYYY-MM-DD (inclusive)")
    for command in (single, dates):
        command.add_argument("pipeline", help="a pipeline file (.py) or module name")
        command.add_argument("--params", help="a JSON object of run parameters")
        where = command.add_mutually_exclusive_group(required=True)
        where.add_argument("--output-dir", help="where the outputs go: a folder, or a file "
                           "P.parquet for P, P.<output>.parquet, P.manifest.json; a backfill's "
                           "{date} is each date (parity.layout)")  # fmt: skip
        where.add_argument("--output-root", help="the front door's layout under this folder: "
                           "<root>/<pipeline>/[date-<D>/|backfill/]<wrapper>/")  # fmt: skip
        command.add_argument("--wrapper", default=label_of(prog),
                             help="the wrapper's name in that layout")  # fmt: skip
    args = parser.parse_args(argv)
    label = re.sub(r"[^A-Za-z0-9]+", "-", prog.split()[-1]).strip("-")
    try:
        pipeline, folder = load(args.pipeline)
        where = {"base_dir": os.getcwd(), "pipeline_dir": folder}
        output_dir = args.output_dir or default_output_dir(
            args.output_root, pipeline.name, args.wrapper, args.command, getattr(args, "date", None)
        )
        if args.command == "run":
            values = bind(pipeline, args.params, date=args.date, **where)
            layout.check(output_dir)
            with staging_area(label):
                one(pipeline, values, os.path.abspath(output_dir))
        else:
            days = dates_between(pipeline, args.start, args.end)
            values = bind(pipeline, args.params, date=args.start, **where)
            for day in days:
                layout.check(layout.for_date(output_dir, day))
            with staging_area(label):
                backfill(pipeline, values, days, os.path.abspath(output_dir))
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def parse_seed(
    prog: str, description: str, argv: list[str] | None
) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The events command line, either form, as every wrapper of it has always taken it."""
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
    window = (args.start, args.end, args.output_dir)
    if bool(args.output_path) == any(window) or (any(window) and not all(window)):
        parser.error("give either --output-path [--date] or all of --start, --end, --output-dir")
    return parser, args


def seed_arguments(prog: str, description: str, argv: list[str]) -> list[str]:
    """The events command line as this one's: `--input-path` is the default pipeline's
    `input_path`, `--output-path` its file layout, a backfill's DIR `DIR/{date}.parquet`."""
    parser, args = parse_seed(prog, description, argv)
    if os.environ.get("ETL_FAIL_ATTEMPTS"):  # the events pipeline's own name for its faults
        os.environ.update({FAIL_STEP: "metrics", FAIL_ATTEMPTS: os.environ["ETL_FAIL_ATTEMPTS"]})
    params = ["--params", json.dumps({"input_path": args.input_path})]
    if not args.output_path:
        where = os.path.join(args.output_dir, f"{layout.DATE_PLACEHOLDER}.parquet")
        return ["backfill", DEFAULT_PIPELINE, *params, "--start", args.start, "--end", args.end,
                "--output-dir", where]  # fmt: skip
    if not layout.is_file(args.output_path):
        parser.exit(2, f"error: output path {args.output_path!r} must end with .parquet and "
                    "name a file: <name>.parquet\n")  # fmt: skip
    day = ["--date", args.date] if args.date else []
    return ["run", DEFAULT_PIPELINE, *params, *day, "--output-dir", args.output_path]


def label_of(prog: str) -> str:
    """The wrapper a command is: `python -m parity` the reference, `python X/adapter.py` X."""
    script = prog.split()[-1]
    return "reference" if script == "parity" else os.path.basename(os.path.dirname(script))


def default_output_dir(root: str, pipeline: str, wrapper: str, command: str,
                       date: str | None) -> str:  # fmt: skip
    """The front door's folders (docs/contract.md §10): a pipeline's outputs under
    <root>/<pipeline>/, one run in <wrapper>/ (a DATE's in date-<D>/<wrapper>/), a
    backfill's in backfill/<wrapper>/<date>/."""
    if command == "backfill":
        return os.path.join(root, pipeline, "backfill", wrapper)
    return os.path.join(root, pipeline, f"date-{date}" if date else "", wrapper)


def dates_between(pipeline: Pipeline, start: str, end: str) -> list[dt.date]:
    """The partition's dates from `start` to `end`, both included."""
    if pipeline.partition is None:
        raise UsageError(f"pipeline {pipeline.name!r} has no partition, so no backfill")
    first, last = parse_date(start), parse_date(end)
    if first is None or last is None:
        raise UsageError(f"backfill dates must be YYYY-MM-DD: {start!r}, {end!r}")
    if last < first:
        raise UsageError(f"backfill end {end} is before its start {start}")
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
