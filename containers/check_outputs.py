"""What a container run must have left in its mounted output/: checked from the host.

    python3 containers/check_outputs.py OUTPUT_DIR --wrappers reference,prefect,... \
        --dates 2024-01-01..2024-01-07 [--owner UID]

Independently of `compare` (which ran in a container and could share a fault with the
images): every wrapper's single run and backfill are there, each Parquet file has the sha256
that compare/golden.json commits to, every manifest records the project's own version (the
installed distribution the images once lacked), the verdict compare wrote says identical
over exactly these wrappers, and, with --owner, every file belongs to that user.
Standard library only: it runs with whatever python3 the host has. Exit 0 ok, 1 not.
"""

import argparse
import hashlib
import json
import sys
import tomllib
from datetime import date, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
GOLDEN = PROJECT / "compare" / "golden.json"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expected_files(output: Path, wrapper: str, dates: list[str]) -> dict[str, Path]:
    """{golden key: the file a wrapper writes for it}, in the layout `make` and compose use."""
    files = {
        "run/metrics": output / f"{wrapper}_output.parquet",
        "run/rejects": output / f"{wrapper}_output.rejects.parquet",
    }
    for day in dates:
        files[f"backfill/{day}/metrics"] = output / "backfill" / wrapper / f"{day}.parquet"
        files[f"backfill/{day}/rejects"] = output / "backfill" / wrapper / f"{day}.rejects.parquet"
    return files


def problems(output: Path, wrappers: list[str], dates: list[str], owner: int | None) -> list[str]:
    golden = json.loads(GOLDEN.read_text())
    project_version = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["version"]
    found = []
    for wrapper in wrappers:
        for key, path in expected_files(output, wrapper, dates).items():
            if not path.is_file():
                found.append(f"{path}: missing")
            elif sha256(path) != golden.get(key):
                found.append(f"{path}: sha256 is not the golden one for {key}")
            manifest = path.with_name(
                path.name.removesuffix(".parquet").removesuffix(".rejects") + ".manifest.json"
            )
            if not manifest.is_file():
                found.append(f"{manifest}: missing")
                continue
            recorded = json.loads(manifest.read_text())["versions"].get("parity")
            if recorded != project_version:
                found.append(f"{manifest}: parity version {recorded!r}, not {project_version}")
    report = output / "parity-report.json"
    if not report.is_file():
        found.append(f"{report}: missing (compare did not run)")
    else:
        verdict = json.loads(report.read_text())
        if verdict["verdict"] != "identical":
            found.append(f"{report}: verdict {verdict['verdict']}")
        if sorted(verdict["wrappers"]) != sorted(wrappers):
            found.append(f"{report}: wrappers {verdict['wrappers']}, expected {wrappers}")
    if owner is not None:
        for path in sorted(output.rglob("*")):
            if path.lstat().st_uid != owner:
                found.append(f"{path}: owned by uid {path.lstat().st_uid}, not {owner}")
    return list(dict.fromkeys(found))  # a manifest shared by two files is named once


def date_range(text: str) -> list[str]:
    start, end = (date.fromisoformat(part) for part in text.split(".."))
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--wrappers", required=True, help="comma-separated")
    parser.add_argument("--dates", required=True, type=date_range, help="D1..D2")
    parser.add_argument("--owner", type=int, help="uid every file must belong to")
    args = parser.parse_args()
    found = problems(args.output, args.wrappers.split(","), args.dates, args.owner)
    for problem in found:
        print(f"check_outputs: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
