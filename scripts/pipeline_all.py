"""`make all|compare|bless PIPELINE=p`: a declared pipeline (docs/contract.md §10) under every
expected wrapper, then one verdict over its folder OUTPUT_ROOT/<name>/.

    all:     each wrapper's run on the pipeline's sample and, if it is partitioned and has
             sample_dates, its backfill of them (one line each, logs in .state/logs/;
             `<wrapper>@deployed`: in MODE=deployed, under <name>/deployed/), then
             the verdict against each other and the golden file <name>.golden.json beside
             the pipeline (missing: red, with the command that writes it);
    compare: the verdict alone (without a golden file, the wrappers with each other);
    bless:   the golden file from fresh reference outputs.
Exit 0 identical, 1 a run failed or a mismatch, 2 a pipeline or name that cannot be used.
"""

import argparse
import shlex
import shutil
import sys
from pathlib import Path

from compare.__main__ import main as compare_main
from parity.errors import PipelineError
from parity.loader import load
from scripts.make_all import LOGS, run


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make all PIPELINE=…", description=__doc__)
    parser.add_argument("action", choices=("all", "compare", "bless"))
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--make", required=True, help="the make command ($(MAKE))")
    parser.add_argument("--expect", required=True, type=str.split, help="the wrappers")
    parser.add_argument("--root", required=True, help="OUTPUT_ROOT")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        pipeline, folder = load(args.pipeline)
    except PipelineError as exc:
        print(f"{args.action}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    root = Path(args.root, pipeline.name)
    golden = Path(folder or ".", f"{pipeline.name}.golden.json")
    if args.action == "bless":
        fresh = Path(".state", "bless", pipeline.name)
        shutil.rmtree(fresh, ignore_errors=True)
        if not runs(pipeline, args, ["reference"], fresh.parent):
            return 1
        return compare_main([str(fresh), "--layout", "pipeline", "--bless", str(fresh),
                             "--golden", str(golden)])  # fmt: skip
    if args.action == "all":
        places = [(folder_of(name, root), name.partition("@")[0]) for name in args.expect]
        rewritten = [folder / wrapper for folder, wrapper in places]
        rewritten += [folder / "backfill" / wrapper for folder, wrapper in places]
        print(f"all: {pipeline.name}: removing the folders it rewrites "
              f"({', '.join(map(str, rewritten))}); other files in {root}/ are kept")  # fmt: skip
        for stale in rewritten:
            shutil.rmtree(stale, ignore_errors=True)
        if not runs(pipeline, args, args.expect, Path(args.root)):
            return 1
    verdict = [str(root), "--layout", "pipeline", "--expect", ",".join(args.expect)]
    if args.action == "all":  # what it wrote, never an earlier run's leftovers beside it
        verdict = [*map(str, filter(Path.exists, rewritten)), "--root", *verdict]
    if golden.exists():
        return compare_main([*verdict, "--golden", str(golden)])
    missing = f"{golden} missing: write it with `make bless PIPELINE={args.pipeline}`"
    if args.action == "all":
        print(f"all: error: {missing}", file=sys.stderr)
        return 1
    print(f"compare: {missing}; the wrappers are compared with each other only", file=sys.stderr)
    return compare_main(verdict)


def folder_of(name: str, root: Path) -> Path:
    """Where `name`'s outputs go: the pipeline's folder, or its mode's folder in it
    (`prefect@deployed`: root/deployed/), the layout compare reads for that mode."""
    mode = name.partition("@")[2]
    return root / mode if mode else root


def runs(pipeline, args: argparse.Namespace, names: list[str], root: Path) -> bool:
    """Every wrapper's run of the sample, then (if any) its backfill of the sample dates; a
    `<wrapper>@deployed` name is that wrapper in MODE=deployed (the stack already up)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    common = [f"PIPELINE={args.pipeline}", "PARAMS=", "DATE="]
    jobs = []
    for name in names:
        wrapper, _, mode = name.partition("@")
        label = wrapper + (f"-{mode}" if mode else "")
        where = [f"MODE={mode or 'local'}", f"OUTPUT_ROOT={root}", "OUTPUT_DIR="]
        if mode:  # the pipeline's own folder, then <mode>/ in it
            folder = folder_of(name, root / pipeline.name)
            where = [f"MODE={mode}", f"OUTPUT_ROOT={root}", f"OUTPUT_DIR={folder / wrapper}"]
        jobs.append((label, [wrapper, *where]))
        if pipeline.sample_dates:
            first, last = (day.isoformat() for day in pipeline.sample_dates)
            dated = [*where[:2], f"OUTPUT_DIR={folder / 'backfill'}"] if mode else where
            jobs.append((f"backfill-{label}", [f"backfill-{wrapper}", f"START={first}",
                                               f"END={last}", *dated]))  # fmt: skip
    failed = [label for label, target in jobs
              if not run(f"{pipeline.name}-{label}",
                         [*shlex.split(args.make), *target, *common])]  # fmt: skip
    return not failed


if __name__ == "__main__":
    sys.exit(main())
