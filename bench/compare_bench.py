"""The verdict's benchmark: parity-compare on pairs of Parquet files of several shapes.

    python -m bench.compare_bench [--rows 2000000] [--rounds 3]
    make bench BENCH_ARGS="--suite compare"

Shapes (each a baseline and a copy, cached under .state/bench/compare/):
  metrics-1cell  the §6 metrics columns, keyed on (event_date, country, event_type), one
                 cell of `events` changed;
  wide-1cell     an int64 id and 20 float64 columns, keyed on id, one float changed;
  identical      the metrics file and a byte-for-byte copy (the hash alone decides).
Contenders, each in a fresh process, in rotating order: `sha256` (hashing both files: the
floor for an identical pair), `read` (pyarrow reading both tables: the floor for any row
diff), `parity-compare`, `polars-join` (a hand-written Polars join on the key and a
per-column comparison: a stand-in peer, not a tool), and datacompy's Polars and pandas
engines (datacompy 1.1.0, in .venvs/datacompy, which `make bench` builds from
bench/datacompy/: its lock is its own, since datacompy 1.1.0 excludes the project's polars
and pandas). Ratios are against the peer measured in the same run: datacompy-polars when
its environment is there, else polars-join (a stand-in, and the output says so).

Goals (issue 21), each printed as met or MISSED, and any missed one makes the exit status 1:
  wall      parity-compare <= 1.0x datacompy-polars on each pair with a differing cell;
  peak RSS  parity-compare's peak RSS <= 2.0x the decoded size of the two tables (the sum
            of pa.Table.nbytes of both files as read), on every pair.
The identical pair's time against sha256 of both files is printed beside them, not a goal:
at these sizes parity-compare's time there is mostly its start (importing pyarrow).
Peak RSS is each contender's own, from the rusage of its fresh process (wait4).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PROJECT = Path(__file__).resolve().parent.parent
STATE = PROJECT / ".state" / "bench" / "compare"
GOAL_VS_PEER = 1.0  # issue 21: at most 1.0x datacompy's Polars engine on a 2M-row pair
GOAL_RSS_VS_TABLES = 2.0  # issue 21: peak RSS at most 2x the decoded size of the two tables
DATACOMPY_PYTHON = PROJECT / ".venvs" / "datacompy" / "bin" / "python"

HASH = ("import hashlib, sys\n"
        "for p in sys.argv[1:]:\n"
        "    hashlib.file_digest(open(p, 'rb'), 'sha256')")  # fmt: skip
READ = "import sys, pyarrow.parquet as pq\nfor p in sys.argv[1:]:\n    pq.ParquetFile(p).read()"
POLARS_JOIN = """
import sys, polars as pl
a, b, key = pl.read_parquet(sys.argv[1]), pl.read_parquet(sys.argv[2]), sys.argv[3].split(",")
joined = a.join(b, on=key, how="full", suffix="__b", nulls_equal=True)
for name in a.columns:
    if name not in key:
        joined.select((pl.col(name).ne_missing(pl.col(name + "__b"))).sum())
"""
DATACOMPY = """
import sys
import datacompy
engine, key = sys.argv[3], sys.argv[4].split(",")
if engine == "polars":
    import polars as pl
    from datacompy import PolarsCompare
    a, b = pl.read_parquet(sys.argv[1]), pl.read_parquet(sys.argv[2])
    PolarsCompare(a, b, join_columns=key).report()
else:
    import pandas as pd
    a, b = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
    datacompy.PandasCompare(a, b, join_columns=key).report()
"""


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    peak: int


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prepare", help=argparse.SUPPRESS)  # a shape, in a child process
    args = parser.parse_args(argv)
    if args.prepare:
        _pair(args.prepare, args.rows)
        return 0
    datacompy = _datacompy_python()
    peer = (_datacompy_version(datacompy) if datacompy
            else "not installed (make bench builds .venvs/datacompy)")  # fmt: skip
    print(f"compare bench: {args.rows:,} rows a pair, median of {args.rounds} rounds, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; datacompy {peer}")
    goals: dict[str, bool] = {}
    for shape, key in (("metrics-1cell", "event_date,country,event_type"), ("wide-1cell", "id"),
                       ("identical", "event_date,country,event_type")):  # fmt: skip
        # Made in a child, so that no contender's peak RSS includes this process's tables.
        subprocess.run([sys.executable, "-m", "bench.compare_bench", "--prepare", shape,
                        "--rows", str(args.rows)], check=True, cwd=PROJECT)  # fmt: skip
        left, right = _pair(shape, args.rows)
        contenders = _contenders(left, right, key, datacompy)
        if shape == "identical":
            contenders = {k: v for k, v in contenders.items() if k in ("sha256", "parity-compare",
                                                                        "read")}  # fmt: skip
        goals |= _report(shape, _rounds(contenders, args.rounds), datacompy is not None, left)
    print()
    for goal, met in goals.items():
        print(f"goal {goal} {'met' if met else 'MISSED'}")
    return 0 if all(goals.values()) else 1


def _contenders(left: Path, right: Path, key: str,
                datacompy: Path | None) -> dict[str, list[str]]:
    files = [str(left), str(right)]
    report = str(STATE / "report")
    contenders = {
        "sha256": [sys.executable, "-c", HASH, *files],
        "read": [sys.executable, "-c", READ, *files],
        "parity-compare": [sys.executable, "-m", "compare", *files, "--key", key,
                           "--report-dir", report],
        "polars-join": [sys.executable, "-c", POLARS_JOIN, *files, key],
    }  # fmt: skip
    if datacompy:
        for engine in ("polars", "pandas"):
            contenders[f"datacompy-{engine}"] = [str(datacompy), "-c", DATACOMPY, *files,
                                                 engine, key]  # fmt: skip
    return contenders


def _rounds(contenders: dict[str, list[str]], rounds: int) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {name: [] for name in contenders}
    names = list(contenders)
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(run := _measure(contenders[name]))
            print(f"  round {number + 1}: {name:<17} {run.wall:7.2f} s wall {run.cpu:7.2f} s cpu "
                  f"{run.peak / 2**20:7.0f} MiB", flush=True)  # fmt: skip
    return runs


def _report(shape: str, runs: dict[str, list[Run]], datacompy: bool,
            left: Path) -> dict[str, bool]:
    """Print the shape's table; return its goals (a line each) and whether each is met."""
    wall = {name: statistics.median(r.wall for r in values) for name, values in runs.items()}
    cpu = {name: statistics.median(r.cpu for r in values) for name, values in runs.items()}
    peak = {name: max(r.peak for r in values) for name, values in runs.items()}
    peer = "datacompy-polars" if datacompy else "polars-join"
    base = peer if peer in wall else "sha256"
    decoded = int(left.with_name("decoded-bytes").read_text())
    print(f"\n{shape}: x {base} by wall time; peak RSS x the two decoded tables "
          f"({decoded / 2**20:.0f} MiB)")
    print(f"{'contender':<17} {'wall s':>7} {'x ' + base[:12]:>15} {'cpu s':>7} "
          f"{'peak MiB':>9} {'x tables':>9}")
    for name in runs:
        print(f"{name:<17} {wall[name]:7.2f} {wall[name] / wall[base]:15.2f} {cpu[name]:7.2f} "
              f"{peak[name] / 2**20:9.0f} {peak[name] / decoded:9.2f}")
    ratio = wall["parity-compare"] / wall[base]
    rss = peak["parity-compare"] / decoded
    goals = {f"{shape}: peak RSS <= {GOAL_RSS_VS_TABLES:.1f}x the two decoded tables: "
             f"{rss:.2f}x": rss <= GOAL_RSS_VS_TABLES}  # fmt: skip
    if shape == "identical":
        print(f"identical pair: {ratio:.2f}x sha256 of both files")
    else:
        stand_in = "" if datacompy else " (a stand-in: datacompy is not installed)"
        goals[f"{shape}: wall <= {GOAL_VS_PEER:.1f}x {base}{stand_in}: {ratio:.2f}x"] = (
            ratio <= GOAL_VS_PEER)  # fmt: skip
    return goals


def _datacompy_python() -> Path | None:
    """The interpreter of the datacompy environment, when it is built and imports datacompy."""
    if not DATACOMPY_PYTHON.exists():
        return None
    found = subprocess.run([DATACOMPY_PYTHON, "-c", "import datacompy"], capture_output=True)
    return DATACOMPY_PYTHON if found.returncode == 0 else None


def _datacompy_version(python: Path) -> str:
    code = "import datacompy, polars, pandas; print(datacompy.__version__, polars.__version__, " \
           "pandas.__version__)"  # fmt: skip
    versions = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    datacompy, polars, pandas = versions.stdout.split()
    return f"{datacompy} (polars {polars}, pandas {pandas}, in .venvs/datacompy)"


def _pair(shape: str, rows: int) -> tuple[Path, Path]:
    """The cached baseline and changed copy of `shape`, written with pyarrow's defaults."""
    folder = STATE / f"{shape}-{rows}"
    left, right = folder / "baseline.parquet", folder / "other.parquet"
    decoded = folder / "decoded-bytes"
    if left.exists() and right.exists() and decoded.exists():
        return left, right
    folder.mkdir(parents=True, exist_ok=True)
    table = _wide(rows) if shape.startswith("wide") else _metrics(rows)
    pq.write_table(table, left, compression="zstd")
    if shape == "identical":
        right.write_bytes(left.read_bytes())
    else:
        column = "c07" if shape.startswith("wide") else "events"
        values = table[column].to_numpy().copy()
        values[rows // 2] += 1
        field = table.schema.field(column)
        changed = table.set_column(table.column_names.index(column), field,
                                   pa.array(values, field.type))  # fmt: skip
        pq.write_table(changed, right, compression="zstd")
    # Both tables as parity-compare reads them: the measure of the peak RSS goal.
    del table
    size = sum(pq.ParquetFile(path).read().nbytes for path in (left, right))
    decoded.write_text(str(size))
    return left, right


def _metrics(rows: int) -> pa.Table:
    """§6-shaped rows, one per (event_date, country, event_type), sorted on them as §6 says."""
    import numpy as np

    rng = np.random.default_rng(7)
    countries, types = 100, 50
    days = -(-rows // (countries * types))
    index = np.arange(rows)
    start = date(2024, 1, 1)
    cents = rng.integers(0, 10**8, rows)
    stamp = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 10**6)
    return pa.table({
        "event_date": pa.array([start + timedelta(days=int(d)) for d in range(days)],
                               pa.date32()).take(pa.array(index // (countries * types))),
        "country": pa.array([f"C{c:03}" for c in range(countries)]).take(
            pa.array((index // types) % countries)),
        "event_type": pa.array([f"type_{t:02}" for t in range(types)]).take(
            pa.array(index % types)),
        "events": pa.array(rng.integers(1, 1000, rows), pa.int64()),
        "unique_users": pa.array(rng.integers(1, 1000, rows), pa.int64()),
        "unique_sessions": pa.array(rng.integers(1, 1000, rows), pa.int64()),
        "revenue_usd": pa.array([Decimal(int(c)).scaleb(-2) for c in cents[:1000]],
                                pa.decimal128(18, 2)).take(pa.array(index % 1000)),
        "first_event_ts": pa.array(stamp + rng.integers(0, 10**12, rows),
                                   pa.timestamp("us", tz="UTC")),
        "last_event_ts": pa.array(stamp + rng.integers(0, 10**12, rows),
                                  pa.timestamp("us", tz="UTC")),
    })  # fmt: skip


def _wide(rows: int) -> pa.Table:
    import numpy as np

    rng = np.random.default_rng(7)
    columns = {f"c{n:02}": pa.array(rng.standard_normal(rows)) for n in range(20)}
    return pa.table({"id": pa.array(np.arange(rows), pa.int64()), **columns})


def _measure(command: list[str]) -> Run:
    """Wall and CPU seconds and peak RSS of one child; exit 0 or 1 (a mismatch) is fine."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"bench: {' '.join(command[:4])} failed with exit {code}")
    return Run(wall=wall, cpu=usage.ru_utime + usage.ru_stime, peak=usage.ru_maxrss * 1024)


if __name__ == "__main__":
    sys.exit(main())
