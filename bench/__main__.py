"""The benchmark: one file, three contenders, interleaved rounds, ratios from the same run.

    python -m bench [--rows 2000000] [--rounds 3]

Contenders, each in a fresh process so that start-up and peak RSS are its own:
  pyarrow-read  pyarrow's bare CSV read of the file (the floor: parsing alone);
  shared_etl    the reference runner, the whole job (read, validate, de-duplicate,
                aggregate, write the metrics, the quarantine and the manifest);
  duckdb        the same job as DuckDB SQL (bench/duckdb_job.sql), on every core.
The order of the contenders rotates each round, so none always runs on a cold cache. This
machine is shared and noisy: read the ratios of one run, not the seconds across runs.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

PROJECT = Path(__file__).resolve().parent.parent
STATE = PROJECT / ".state" / "bench"
FLOOR = (
    "import sys, pyarrow.csv as c; "
    "c.read_csv(sys.argv[1], parse_options=c.ParseOptions("
    "newlines_in_values=True, invalid_row_handler=lambda row: 'skip'))"
)
TARGET_WALL_VS_DUCKDB = 1.0
TARGET_RSS_VS_CSV = 3.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    source = _bench_file(args.rows)
    out = STATE / "out"
    out.mkdir(parents=True, exist_ok=True)
    contenders = {
        "pyarrow-read": [sys.executable, "-c", FLOOR, str(source)],
        "shared_etl": [sys.executable, "-m", "shared_etl", "--input-path", str(source),
                       "--output-path", str(out / "shared_etl.parquet")],
        "duckdb": [sys.executable, "-m", "bench.duckdb_job", str(source),
                   str(out / "duckdb.parquet"), str(out / "duckdb.rejects.parquet")],
    }  # fmt: skip
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    peaks: dict[str, list[int]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_number in range(args.rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            wall, peak = _measure(contenders[name])
            walls[name].append(wall)
            peaks[name].append(peak)
            print(f"round {round_number + 1}: {name:<13} {wall:6.2f} s  {peak / 2**20:7.0f} MiB",
                  flush=True)  # fmt: skip

    csv_bytes = source.stat().st_size
    wall = {name: statistics.median(values) for name, values in walls.items()}
    peak = {name: max(values) for name, values in peaks.items()}
    print()
    print(f"input: {source.name}, {args.rows:,} records, {csv_bytes / 2**20:.0f} MiB; "
          f"median of {args.rounds} interleaved rounds, {os.cpu_count()} cores")  # fmt: skip
    print(f"{'contender':<13} {'wall s':>7} {'x duckdb':>9} {'x floor':>8} {'peak MiB':>9} "
          f"{'x csv':>6}")  # fmt: skip
    for name in names:
        print(f"{name:<13} {wall[name]:7.2f} {wall[name] / wall['duckdb']:9.2f} "
              f"{wall[name] / wall['pyarrow-read']:8.2f} {peak[name] / 2**20:9.0f} "
              f"{peak[name] / csv_bytes:6.2f}")  # fmt: skip
    same = (
        pq.read_table(out / "duckdb.parquet")
        .cast(pq.read_schema(out / "shared_etl.parquet"))
        .equals(pq.read_table(out / "shared_etl.parquet"))
    )
    print(f"\nDuckDB's metrics equal shared_etl's cell for cell: {'yes' if same else 'NO'}")
    wall_ratio = wall["shared_etl"] / wall["duckdb"]
    rss_ratio = peak["shared_etl"] / csv_bytes
    print(f"target wall <= {TARGET_WALL_VS_DUCKDB:.1f}x DuckDB: {wall_ratio:.2f}x "
          f"{'met' if wall_ratio <= TARGET_WALL_VS_DUCKDB else 'MISSED'}")  # fmt: skip
    print(f"target peak RSS <= {TARGET_RSS_VS_CSV:.1f}x CSV size: {rss_ratio:.2f}x "
          f"{'met' if rss_ratio <= TARGET_RSS_VS_CSV else 'MISSED'}")  # fmt: skip
    return 0


def _bench_file(rows: int) -> Path:
    """The generated input, cached: generating 2M records takes longer than the bench."""
    path = STATE / f"events-{rows}.csv"
    if not path.exists():
        print(f"generating {path} (cached for later runs) ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "shared_etl.generate", "--rows", str(rows), "--seed", "7",
             "--start", "2024-01-01", "--days", "31", "--output", str(path)],
            check=True, cwd=PROJECT, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return path


def _measure(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS in bytes of one child process (its own rusage, via wait4)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command[:3])} failed with exit {child.returncode}")
    return wall, usage.ru_maxrss * 1024


if __name__ == "__main__":
    sys.exit(main())
