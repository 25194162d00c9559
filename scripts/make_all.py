"""`make all`'s recipe: each expected wrapper's run and backfill of the sample through `make`,
one progress line each (the full output in .state/logs/<run>.log), then one verdict over
exactly the files this run wrote.

An expected name is a wrapper in local mode (`prefect`: outputs under ROOT/) or in deployed
mode (`prefect@deployed`: `make prefect MODE=deployed`, outputs under ROOT/deployed/ in the
same layout). That is the layout compare reads, so each output's local and deployed files
meet in one group of one verdict, against the reference runner and the golden hashes.

The Makefile runs this inside one `python -m stack exec` when a deployed wrapper is expected,
so the stack starts once for every run (and stops after, unless it was up before).
Exit 0 identical, 1 a run failed or the verdict is a mismatch, 2 a name that is no wrapper.
"""

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

from compare import MODES

LOGS = Path(".state/logs")  # relative to the project, where make runs its recipes


def folder_of(name: str, root: str) -> str:
    """Where a wrapper's outputs go in its mode: ROOT, or ROOT/<mode> (e.g. ROOT/deployed)."""
    mode = name.partition("@")[2]
    return f"{root}/{mode}" if mode else root


def stems(name: str, root: str, dates: list[str]) -> list[Path]:
    """The outputs `name` writes, without their suffixes: its run and each backfill date."""
    wrapper, folder = name.partition("@")[0], folder_of(name, root)
    return [Path(folder, f"{wrapper}_output")] + [
        Path(folder, "backfill", wrapper, day) for day in dates
    ]


def make_command(make: str, target: str, name: str, args: argparse.Namespace) -> list[str]:
    """`make <target>` for one run of `name` on the sample, every variable set explicitly so
    nothing from the calling `make all` (MODE, OUTPUT, DATE...) leaks into it."""
    wrapper, _, mode = name.partition("@")
    folder = folder_of(name, args.root)
    return [*shlex.split(make), target + wrapper, f"MODE={mode or 'local'}",
            f"INPUT={args.input}", "OUTPUT=", "DATE=", f"OUTPUT_ROOT={folder}",
            f"START={args.dates[0]}", f"END={args.dates[-1]}",
            f"OUTPUT_DIR={folder}/backfill"]  # fmt: skip


def removal_note(names: list[str], args: argparse.Namespace) -> str:
    span = f"<{args.dates[0]}..{args.dates[-1]}>"
    by_folder: dict[str, list[str]] = {}
    for name in names:
        by_folder.setdefault(folder_of(name, args.root), []).append(name.partition("@")[0])
    parts = [f"{folder}/<wrapper>_output.*, {folder}/backfill/<wrapper>/{span}.* of "
             f"{', '.join(wrappers)}" for folder, wrappers in by_folder.items()]  # fmt: skip
    return (f"all: removing the outputs it rewrites ({'; '.join(parts)}) and {args.root}/"
            f"parity-report.*; other files in {args.root}/ are kept")  # fmt: skip


def run(label: str, command: list[str]) -> bool:
    """One make run, its output to its log; prints one line with its outcome and time."""
    log = LOGS / f"{label}.log"
    started = time.monotonic()
    with log.open("w") as output:
        ok = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT).returncode == 0
    status = "ok" if ok else "FAILED"
    print(f"all: {label} {status} in {time.monotonic() - started:.1f} s (log: {log})", flush=True)
    return ok


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make all", description=__doc__)
    parser.add_argument("--make", required=True, help="the make command ($(MAKE))")
    parser.add_argument("--wrappers", required=True, type=str.split, help="make's WRAPPERS")
    parser.add_argument("--expect", required=True, type=str.split, help="the names to run")
    parser.add_argument("--root", required=True, help="OUTPUT_ROOT")
    parser.add_argument("--input", required=True, help="the sample CSV")
    parser.add_argument("--dates", required=True, type=str.split, help="the sample's dates")
    parser.add_argument("--golden", required=True, help="the golden hashes")
    args = parser.parse_args(argv)
    for name in args.expect:
        wrapper, at, mode = name.partition("@")
        if wrapper not in args.wrappers or (at and mode not in MODES):
            parser.exit(2, f"all: EXPECT: {name} is not a wrapper ({' '.join(args.wrappers)}; "
                           f"<wrapper>@{'|'.join(MODES)} for another mode)\n")  # fmt: skip
    args.expect = list(dict.fromkeys(args.expect))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    names = args.expect
    print(removal_note(names, args), flush=True)
    written = [stem for name in names for stem in stems(name, args.root, args.dates)]
    for stem in written:
        for suffix in (".parquet", ".rejects.parquet", ".manifest.json"):
            stem.with_name(stem.name + suffix).unlink(missing_ok=True)
    for report in ("parity-report.json", "parity-report.md"):
        Path(args.root, report).unlink(missing_ok=True)

    LOGS.mkdir(parents=True, exist_ok=True)
    failed = []
    for kind in ("", "backfill-"):  # every run first, then every backfill
        for name in names:
            if not run(kind + name, make_command(args.make, kind, name, args)):
                failed.append(kind + name)

    produced = [
        str(path)
        for stem in written
        for suffix in (".parquet", ".rejects.parquet")
        if (path := stem.with_name(stem.name + suffix)).exists()
    ]
    if not produced:
        print("all: no wrapper produced an output: nothing to compare", file=sys.stderr)
        return 1
    verdict = subprocess.run(
        [sys.executable, "-m", "compare", "--root", args.root, "--expect", " ".join(names),
         "--golden", args.golden, *produced],
    )  # fmt: skip
    if failed:
        print(f"all: failed: {', '.join(failed)} (logs: {LOGS}/<name>.log)", file=sys.stderr)
    return 1 if failed or verdict.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
