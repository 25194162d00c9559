"""`make new-pipeline NAME=n DIR=d`: a working pipeline of your own to start from.

Writes d/n.py (two pandas steps, a daily partition, a float column), its sample d/n.csv, a
README.md stub and d/n.golden.json (blessed from the reference runner's outputs), so that
`make all PIPELINE=d/n.py` is green at once. Everything is built in a hidden folder inside d
and moved in only when the pipeline loads and its golden file is written; a name that is
taken, or a NAME the declaration refuses, is one line and exit 2, with nothing written.
"""

import argparse
import contextlib
import io
import os
import shutil
import string
import sys
import tempfile
from pathlib import Path

from parity.errors import PipelineError
from parity.loader import load
from scripts.pipeline_all import main as pipeline_all

TEMPLATES = Path(__file__).parent / "templates"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make new-pipeline", description=__doc__)
    parser.add_argument("--name", required=True, help="NAME: the pipeline's lower_snake_case name")
    parser.add_argument("--dir", required=True, type=Path, help="DIR: where its files go")
    parser.add_argument("--make", required=True, help="the make command ($(MAKE))")
    return parser.parse_args(argv)


def files(name: str, folder: Path) -> dict[str, str]:
    """File name → text of each file the scaffold writes (the golden file is blessed)."""
    values = {"name": name, "path": str(folder / f"{name}.py")}
    text = {template: string.Template((TEMPLATES / template).read_text()).substitute(values)
            for template in ("pipeline.py", "sample.csv", "README.md")}  # fmt: skip
    return {f"{name}.py": text["pipeline.py"], f"{name}.csv": text["sample.csv"],
            "README.md": text["README.md"]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if not args.name or not args.name.isidentifier():
        print(f"new-pipeline: error: NAME={args.name!r} is no Python identifier", file=sys.stderr)
        return 2
    written = [*files(args.name, args.dir), f"{args.name}.golden.json"]
    taken = [name for name in written if (args.dir / name).exists()]
    if taken:
        print(f"new-pipeline: error: {args.dir}/{taken[0]} exists; choose another NAME or DIR",
              file=sys.stderr)  # fmt: skip
        return 2
    args.dir.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".new-pipeline-{args.name}-", dir=args.dir))
    try:
        for name, text in files(args.name, args.dir).items():
            (building / name).write_text(text)
        try:
            load(str(building / f"{args.name}.py"))
        except PipelineError as exc:
            print(f"new-pipeline: error: NAME={args.name}: {exc}", file=sys.stderr)
            return 2
        said = io.StringIO()  # the blessing's lines name the hidden folder: shown on failure
        with contextlib.redirect_stdout(said):
            status = pipeline_all(["bless", "--pipeline", str(building / f"{args.name}.py"),
                                   "--make", args.make, "--expect", "reference",
                                   "--root", str(building / ".outputs")])  # fmt: skip
        if status != 0:
            print(said.getvalue(), end="")
            return status
        for name in written:  # a link never replaces a file that appeared meanwhile
            os.link(building / name, args.dir / name)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    print(f"new-pipeline: wrote {', '.join(str(args.dir / name) for name in written)}")
    print(f"next: make all PIPELINE={args.dir / args.name}.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
