"""The benchmark: one file, four contenders, interleaved rounds, ratios from the same run.

    python -m bench [--rows 2000000] [--rounds 3] [--suite all|etl|compare]

--suite compare runs bench/compare_bench.py instead (the verdict on pairs of Parquet files,
with --rows rows a pair, against datacompy's engines; its goals are issue 21's, in its own
docstring); all (the default) runs this benchmark, then that one. `make bench` builds
datacompy's own environment (.venvs/datacompy, from bench/datacompy/) first.

Contenders, each in a fresh process so that start-up, CPU time and peak RSS are its own:
  pyarrow-read  pyarrow's bare CSV read of the file (the floor: parsing alone);
  shared_etl    the reference runner, the whole job (read, validate, de-duplicate,
                aggregate, write the metrics, the quarantine and the manifest);
  duckdb        the same job as DuckDB SQL (bench/duckdb_job.sql), on every core;
  polars        the same job as a Polars query (bench/polars_job.py), on every core.
The order of the contenders rotates each round, so none always runs on a cold cache. This
machine is shared and noisy: read the ratios of one run, not the seconds across runs. CPU
seconds (user + system) are the least disturbed by other load; cores = CPU / wall.

Goals (issue 15): wall <= 1.0x the best of DuckDB and Polars; peak RSS <= 2.0x the CSV from
10M records up, and below that no higher than before the work (3.5x the CSV at 2M: issue 15).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

PROJECT = Path(__file__).resolve().parent.parent
STATE = PROJECT / ".state" / "bench"
FLOOR = (
    "import sys, pyarrow.csv as c; "
    "c.read_csv(sys.argv[1], parse_options=c.ParseOptions("
    "newlines_in_values=True, invalid_row_handler=lambda row: 'skip'))"
)
GOAL_WALL_VS_BEST_PEER = 1.0
GOAL_RSS_VS_CSV_LARGE = 2.0  # from LARGE records up
GOAL_RSS_VS_CSV_SMALL = 3.5  # below: the runner's peak at 2M before issue 15 (its table)
LARGE = 10_000_000
PEERS = ("duckdb", "polars")


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds
    peak: int  # bytes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=2_000_000, help="records (e.g. 10000000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--suite", choices=("all", "etl", "compare"), default="all")
    args = parser.parse_args(argv)
    started = time.monotonic()
    status = _suites(args)
    print(f"bench: {'every goal met' if status == 0 else 'FAILED'} "
          f"in {time.monotonic() - started:.0f} s")  # fmt: skip
    return status


def _suites(args: argparse.Namespace) -> int:
    if args.suite != "etl":
        from bench import compare_bench

        compare = ["--rows", str(args.rows), "--rounds", str(args.rounds)]
        if args.suite == "compare":
            return compare_bench.main(compare)
        status = _etl(args)
        print()
        return max(status, compare_bench.main(compare))
    return _etl(args)


def _etl(args: argparse.Namespace) -> int:

    source = _bench_file(args.rows)
    out = STATE / "out"
    out.mkdir(parents=True, exist_ok=True)
    contenders = {
        "pyarrow-read": [sys.executable, "-c", FLOOR, str(source)],
        "shared_etl": [sys.executable, "-m", "shared_etl", "--input-path", str(source),
                       "--output-path", str(out / "shared_etl.parquet")],
        **{peer: [sys.executable, "-m", f"bench.{peer}_job", str(source),
                  str(out / f"{peer}.parquet"), str(out / f"{peer}.rejects.parquet")]
           for peer in PEERS},
    }  # fmt: skip
    runs: dict[str, list[Run]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_number in range(args.rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            run = _measure(contenders[name])
            runs[name].append(run)
            print(f"round {round_number + 1}: {name:<13} {run.wall:6.2f} s wall "
                  f"{run.cpu:6.2f} s cpu {run.peak / 2**20:7.0f} MiB", flush=True)  # fmt: skip

    csv_bytes = source.stat().st_size
    wall = {name: statistics.median(r.wall for r in values) for name, values in runs.items()}
    cpu = {name: statistics.median(r.cpu for r in values) for name, values in runs.items()}
    peak = {name: max(r.peak for r in values) for name, values in runs.items()}
    best = min(PEERS, key=wall.__getitem__)
    print()
    print(f"input: {source.name}, {args.rows:,} records, {csv_bytes / 2**20:.0f} MiB; "
          f"median of {args.rounds} interleaved rounds, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'contender':<13} {'wall s':>7} {'x best':>7} {'cpu s':>7} {'x best':>7} "
          f"{'cores':>6} {'peak MiB':>9} {'x csv':>6}")  # fmt: skip
    for name in names:
        print(f"{name:<13} {wall[name]:7.2f} {wall[name] / wall[best]:7.2f} {cpu[name]:7.2f} "
              f"{cpu[name] / cpu[best]:7.2f} {cpu[name] / wall[name]:6.2f} "
              f"{peak[name] / 2**20:9.0f} {peak[name] / csv_bytes:6.2f}")  # fmt: skip
    print(f"(x best: against {best}, the faster peer by wall time)")

    print()
    ours, agree = out / "shared_etl", []
    for peer in PEERS:
        metrics = _same(out / f"{peer}.parquet", ours.with_suffix(".parquet"))
        rejects = _same(out / f"{peer}.rejects.parquet", ours.with_suffix(".rejects.parquet"),
                        ["source_row", "reject_reason"])  # fmt: skip
        print(f"{peer}: metrics equal shared_etl's cell for cell: {_yes(metrics)}; "
              f"reject reasons by source_row: {_yes(rejects)}")  # fmt: skip
        agree += [metrics, rejects]

    wall_ratio = wall["shared_etl"] / wall[best]
    rss_ratio = peak["shared_etl"] / csv_bytes
    rss_goal = GOAL_RSS_VS_CSV_LARGE if args.rows >= LARGE else GOAL_RSS_VS_CSV_SMALL
    goals = {
        f"wall <= {GOAL_WALL_VS_BEST_PEER:.1f}x the best peer ({best}): {wall_ratio:.2f}x":
            wall_ratio <= GOAL_WALL_VS_BEST_PEER,
        f"peak RSS <= {rss_goal:.2f}x the CSV: {rss_ratio:.2f}x": rss_ratio <= rss_goal,
    }  # fmt: skip
    for goal, met in goals.items():
        print(f"goal {goal} {_met(met)}")
    # A missed goal, or a peer that computed something else, fails the run: make bench's exit
    # status is what a CI job or a regression hunt can act on.
    return 0 if all(goals.values()) and all(agree) else 1


def _same(theirs: Path, ours: Path, columns: list[str] | None = None) -> bool:
    """Whether two Parquet files hold the same cells (types cast to ours)."""
    mine = pq.read_table(ours, columns=columns)
    other = pq.read_table(theirs, columns=columns)
    try:
        return other.cast(mine.schema).equals(mine)
    except (ValueError, TypeError):
        return False


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _met(flag: bool) -> str:
    return "met" if flag else "MISSED"


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


def _measure(command: list[str]) -> Run:
    """Wall seconds, CPU seconds and peak RSS of one child process (its rusage, via wait4)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command[:3])} failed with exit {child.returncode}")
    return Run(wall=wall, cpu=usage.ru_utime + usage.ru_stime, peak=usage.ru_maxrss * 1024)


if __name__ == "__main__":
    sys.exit(main())
