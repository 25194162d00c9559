"""The orchestrators' overhead: what each wrapper adds to the reference runner on the sample,
through the front door a user types (`make`), measured in one run (issue 24).

    python -m bench.overhead [--rounds 2] [--deployed]

Each round runs every wrapper's one run and its 7-date backfill of the sample, in an order
that rotates each round; a wrapper's overhead is the median of its wall seconds minus the
reference runner's in the same run. The import of the orchestrator alone (a fresh
interpreter of its environment) is timed too, to say how much of the overhead is loading
code and how much is the orchestrator at work (its servers, database, scheduler, polling).
Then one warm `make all`. With --deployed, the same runs through the stack (`make up` first,
timed apart, and `make down` after): a run's overhead is over the reference's local run; a
backfill's is over that orchestrator's own deployed run.

Goals (issue 24): local one-run overhead <= 3 s for each orchestrator; a 7-date backfill
<= 10 s over the reference's; warm `make all` <= 60 s; deployed one-run overhead <= 3 s and a
deployed backfill <= 10 s over its run. A missed goal is printed as MISSED with its bound.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from parity.registry import ORCHESTRATORS, REFERENCE, WRAPPERS

PROJECT = Path(__file__).resolve().parent.parent
IMPORTS = {"prefect": "prefect", "dagster": "dagster", "airflow": "airflow.sdk"}
DATES = ("2024-01-01", "2024-01-07")
GOAL_RUN_S, GOAL_BACKFILL_S, GOAL_ALL_S = 3.0, 10.0, 60.0


def timed(command: list[str]) -> float:
    """Wall seconds of one command, which must succeed (its output is dropped)."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise SystemExit(f"bench: {' '.join(command)} failed: {tail}")
    return time.perf_counter() - started


def make(*args: str) -> list[str]:
    return ["make", "--no-print-directory", "-s", *args]


def runs(wrapper: str, out: Path, mode: str) -> dict[str, list[str]]:
    """The one run and the backfill of the sample for `wrapper` in `mode`."""
    where = out / mode / wrapper
    run = make(wrapper, f"MODE={mode}", f"OUTPUT={where}/run.parquet", "DATE=")
    backfill = make(f"backfill-{wrapper}", f"MODE={mode}", f"START={DATES[0]}",
                    f"END={DATES[1]}", f"OUTPUT_DIR={where}/backfill")  # fmt: skip
    return {"run": run, "backfill": backfill}


def measure(wrappers: list[str], out: Path, mode: str, rounds: int) -> dict[tuple[str, str], float]:
    """Median wall seconds of each (wrapper, kind), rounds interleaved and rotated."""
    seconds: dict[tuple[str, str], list[float]] = {}
    for number in range(rounds):
        shift = number % len(wrappers)
        for wrapper in wrappers[shift:] + wrappers[:shift]:
            for kind, command in runs(wrapper, out, mode).items():
                took = timed(command)
                seconds.setdefault((wrapper, kind), []).append(took)
                print(f"round {number + 1}: {mode:<8} {kind:<8} {wrapper:<9} {took:6.1f} s",
                      flush=True)  # fmt: skip
    return {key: statistics.median(values) for key, values in seconds.items()}


def goal(text: str, value: float, bound: float) -> bool:
    met = value <= bound
    print(f"goal {text} <= {bound:.0f} s: {value:.1f} s {'met' if met else 'MISSED'}")
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--deployed", action="store_true", help="also through the stack")
    args = parser.parse_args(argv)
    met: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="parity-overhead-") as folder:
        out = Path(folder)
        local = measure(list(WRAPPERS), out, "local", args.rounds)
        imports = {name: statistics.median(timed([str(PROJECT / ".venvs" / name / "bin" /
                                                      "python"), "-c", f"import {module}"])
                                           for _ in range(args.rounds))
                   for name, module in IMPORTS.items()}  # fmt: skip
        base_run, base_backfill = local[REFERENCE, "run"], local[REFERENCE, "backfill"]
        print(f"reference: run {base_run:.1f} s, backfill {base_backfill:.1f} s")
        for name in ORCHESTRATORS:
            run, backfill = local[name, "run"] - base_run, local[name, "backfill"] - base_backfill
            print(f"{name}: importing {IMPORTS[name]} {imports[name]:.1f} s of a run's "
                  f"{run:.1f} s overhead; the rest is the orchestrator at work")  # fmt: skip
            met.append(goal(f"{name} local one-run overhead", run, GOAL_RUN_S))
            met.append(goal(f"{name} 7-date backfill over the reference's", backfill,
                            GOAL_BACKFILL_S))  # fmt: skip
        met.append(goal("warm make all", timed(make("all", f"OUTPUT_ROOT={out / 'all'}")),
                        GOAL_ALL_S))  # fmt: skip
        if args.deployed:
            met += deployed(out, args.rounds, base_run)
    print(f"overhead: {sum(met)} of {len(met)} goals met")
    return 0 if all(met) else 1


def deployed(out: Path, rounds: int, base_run: float) -> list[bool]:
    up = timed(make("up"))
    print(f"make up: {up:.1f} s (once, not counted in the runs)")
    try:
        seconds = measure(list(ORCHESTRATORS), out, "deployed", rounds)
    finally:
        subprocess.run(make("down"), cwd=PROJECT, capture_output=True, check=False)
    met = []
    for name in ORCHESTRATORS:
        run = seconds[name, "run"]
        met.append(goal(f"{name} deployed one-run overhead", run - base_run, GOAL_RUN_S))
        met.append(goal(f"{name} deployed backfill over its run",
                        seconds[name, "backfill"] - run, GOAL_BACKFILL_S))  # fmt: skip
    return met


if __name__ == "__main__":
    sys.exit(main())
