"""The reference runner for any declared pipeline: each step once, in this process.

    python -m parity run PIPELINE [--params JSON] [--date YYYY-MM-DD] --output-dir DIR
    python -m parity backfill PIPELINE [--params JSON] --start D1 --end D2 --output-dir DIR

One run writes DIR/<output>.parquet and DIR/manifest.json; a backfill DIR/<date>/…. Exit 0;
2 with one line for a declaration, parameter or input error; 1 when a step failed.
"""

import sys

from parity import reference
from parity.cli import run_command


def _run(pipeline, values, output_dir: str) -> None:
    written = reference.run(pipeline, values, output_dir)
    print(f"reference: {pipeline.name}: wrote {', '.join(sorted(written))} to {output_dir}")


def _backfill(pipeline, values, dates, output_dir: str) -> None:
    reference.backfill(pipeline, values, dates, output_dir)
    print(f"reference: {pipeline.name}: wrote {len(dates)} date(s) to {output_dir}")


def main(argv: list[str] | None = None) -> int:
    return run_command("python -m parity", __doc__, _run, _backfill, argv)


if __name__ == "__main__":
    sys.exit(main())
