"""`make all|compare|bless PIPELINE=p`: a declared pipeline (docs/contract.md §10) under every
expected wrapper, then one verdict over its folder OUTPUT_ROOT/<name>/.

    all:     each wrapper's run on the pipeline's sample and, if it is partitioned and has
             sample_dates, its backfill of them (one line each, logs in .state/logs/;
             `<wrapper>@deployed`: in MODE=deployed, under <name>/deployed/), then
             the verdict against each other and the golden file <name>.golden.json beside
             the pipeline (missing: red, with the command that writes it);
    compare: the verdict alone (without a golden file, the wrappers with each other);
    bless:   the golden file from fresh reference outputs.
`make docker-all PIPELINE=p` runs the same in containers (containers/pipeline.sh), in the
reference image, in two halves around the runs it starts itself:
    plan:    all's first part: removes the folders all rewrites, then prints the runs, one a
             line: `run WRAPPER` or `backfill WRAPPER START END`;
    verdict: all's last part: the verdict over exactly those folders, against the golden file.
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
    parser.add_argument("action", choices=("all", "compare", "bless", "plan", "verdict"))
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--make", default="make", help="the make command ($(MAKE))")
    parser.add_argument("--expect", required=True, type=str.split, help="the wrappers")
    parser.add_argument("--root", required=True, help="OUTPUT_ROOT")
    parser.add_argument("--given", help="the pipeline as you gave it, for messages (in a "
                        "container, --pipeline is where it is mounted)")  # fmt: skip
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
    places = [(folder_of(name, root), name.partition("@")[0]) for name in args.expect]
    rewritten = [folder / wrapper for folder, wrapper in places]
    rewritten += [folder / "backfill" / wrapper for folder, wrapper in places]
    if args.action in ("all", "plan"):
        # stderr: a plan's stdout is its runs
        print(f"all: {pipeline.name}: removing the folders it rewrites "
              f"({', '.join(map(str, rewritten))}); other files in {root}/ are kept",
              file=sys.stderr if args.action == "plan" else sys.stdout)  # fmt: skip
        for stale in rewritten:
            shutil.rmtree(stale, ignore_errors=True)
    if args.action == "plan":
        planned = jobs(pipeline, args.expect, Path(args.root))
        print("\n".join(" ".join(line) for *_, line in planned))
        return 0
    if args.action == "all" and not runs(pipeline, args, args.expect, Path(args.root)):
        return 1
    verdict = [str(root), "--layout", "pipeline", "--expect", ",".join(args.expect)]
    if args.action in ("all", "verdict"):  # what it wrote, never an earlier run's leftovers
        verdict = [*map(str, filter(Path.exists, rewritten)), "--root", *verdict]
    if golden.exists():
        return compare_main([*verdict, "--golden", str(golden)])
    given = args.given or args.pipeline
    shown = Path(given).parent / golden.name if args.given else golden
    missing = f"{shown} missing: write it with `make bless PIPELINE={given}`"
    if args.action in ("all", "verdict"):
        print(f"all: error: {missing}", file=sys.stderr)
        return 1
    print(f"compare: {missing}; the wrappers are compared with each other only", file=sys.stderr)
    return compare_main(verdict)


def folder_of(name: str, root: Path) -> Path:
    """Where `name`'s outputs go: the pipeline's folder, or its mode's folder in it
    (`prefect@deployed`: root/deployed/), the layout compare reads for that mode."""
    mode = name.partition("@")[2]
    return root / mode if mode else root


def jobs(pipeline, names: list[str], root: Path) -> list[tuple[str, list[str], list[str]]]:
    """Every wrapper's run of the sample, then (if any) its backfill of the sample dates:
    each as its label, make's target and variables, and a plan's line. `<wrapper>@deployed`
    is that wrapper in MODE=deployed (the stack already up), under <name>/deployed/."""
    runs, backfills = [], []
    for name in names:
        wrapper, _, mode = name.partition("@")
        label = wrapper + (f"-{mode}" if mode else "")
        where = dated = [f"MODE={mode or 'local'}", f"OUTPUT_ROOT={root}", "OUTPUT_DIR="]
        if mode:  # the pipeline's own folder, then <mode>/ in it
            folder = folder_of(name, root / pipeline.name)
            where = [*where[:2], f"OUTPUT_DIR={folder / wrapper}"]
            dated = [*where[:2], f"OUTPUT_DIR={folder / 'backfill'}"]
        runs.append((label, [wrapper, *where], ["run", wrapper]))
        if pipeline.sample_dates:
            first, last = (day.isoformat() for day in pipeline.sample_dates)
            backfills.append((f"backfill-{label}", [f"backfill-{wrapper}", f"START={first}",
                                                    f"END={last}", *dated],
                              ["backfill", wrapper, first, last]))  # fmt: skip
    return runs + backfills


def runs(pipeline, args: argparse.Namespace, names: list[str], root: Path) -> bool:
    """The jobs, each through make (one line each, its log in .state/logs/)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    common = [f"PIPELINE={args.pipeline}", "PARAMS=", "DATE="]
    failed = [label for label, target, _ in jobs(pipeline, names, root)
              if not run(f"{pipeline.name}-{label}",
                         [*shlex.split(args.make), *target, *common])]  # fmt: skip
    return not failed


if __name__ == "__main__":
    sys.exit(main())
