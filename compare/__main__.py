"""The parity verdict: did every wrapper write the same bytes, and if not, exactly how not.

    parity-compare [PATHS...] [--expect W1,W2,...] [--golden compare/golden.json]
                   [--root DIR] [--report-dir DIR] [--key COL1,COL2]
    parity-compare A.parquet B.parquet [C.parquet ...] [--key COL1,COL2]
    parity-compare --bless FOLDER --golden compare/golden.json
    parity-compare output/<pipeline> --layout pipeline [--golden <pipeline>.golden.json] ...
(`parity-compare` is `python -m compare`, installed in .venvs/reference/bin.)

Groups the same logical file from each expected wrapper (discovery.py; default: every
wrapper of the project in local mode; `prefect@deployed` names Prefect's outputs under
deployed/, grouped with the local ones, so the modes are compared too), compares every
wrapper's file with the reference runner's, and, given --golden, every file with its
committed sha256. A wrapper with no output, an output one expected wrapper lacks, or a
golden output nobody produced is a mismatch, named. Files given directly (two or more, no
--root) need no layout: the first is the baseline, each is named by its path.
Rows are keyed on --key, else on the key a pipeline's manifest.json records, else, for the
events pipeline, on contract §6's grain; with none they are compared as a multiset.
Fewer than two sides and no --golden is no verdict (exit 2).
Writes parity-report.json, .md (fit for a CI job summary), .junit.xml and .html to --report-dir
(default: the root, else the one folder compared); a report left by an earlier run is
removed first, so a failed comparison never leaves a verdict behind.
--mismatches DIR writes every differing and one-sided row as Parquet, one file per output
and per side compared with the baseline: DIR/<output>.<side>.parquet (e.g.
DIR/run/metrics.prefect.parquet; files given directly: DIR/<baseline stem>.<other>.parquet),
with a `mismatch` column (differs, baseline only, other only), the key, and each other
column of both sides as <name>_baseline and <name>_other (compare/mismatches.py).
Exit 0 all identical, 1 any mismatch, 2 a usage or input error (a missing path, a file that
is not a readable Parquet output, a Parquet file in no known layout, two files that would be
one output, a damaged manifest.json the key depends on, a --mismatches DIR that is a file
or not writable), one line each.
"""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import NoReturn

from compare import KNOWN_WRAPPERS, MODES
from compare.discovery import DiscoveryError, Found, discover, discover_files, discover_pipeline
from compare.html_report import render_html
from compare.junit import render_junit
from compare.manifests import ManifestError, events_manifest, library_versions
from compare.mismatches import (
    KIND,
    MismatchesError,
    mismatch_path,
    mismatch_table,
    remove_stale,
    usable_folder,
    write_mismatches,
)
from compare.parquet_diff import KeyColumnError, NotParquetError, ParquetFacts, explain, read_facts
from compare.report import render_console, render_markdown
from compare.row_diff import Mismatched
from compare.schema_diff import column_pairs
from compare.tolerance import Tolerances, examine
from parity import processes

BASELINE = "reference"
REPORTS = ("parity-report.json", "parity-report.md", "parity-report.junit.xml",
           "parity-report.html")  # all removed before a run, all rewritten after it


class InputError(Exception):
    """What the user gave cannot be compared: one line per problem, exit 2."""


ERRORS = (InputError, DiscoveryError, NotParquetError, ManifestError, KeyColumnError,
          MismatchesError)


def build_report(
    groups: dict[str, dict[str, Path]],
    golden: dict[str, str] | None,
    expected: list[str],
    key: tuple[str, ...] | None = None,
    layout: str = "events",
    tolerances: Tolerances | None = None,
    mismatches: Path | None = None,
) -> dict:
    """The verdict on every group; `layout` is events, pipeline or files (given directly);
    with `mismatches`, every differing row is written there too, group by group, while the
    group's tables are in memory."""
    report_groups = []
    written: dict[Path, str] = {}  # each mismatch file, and the pair it holds
    for name, members in groups.items():
        facts = {
            wrapper: read_facts(path, key, events=layout == "events" or (
                layout == "files" and events_manifest(path).is_file()))
            for wrapper, path in members.items()
        }  # fmt: skip
        baseline = expected[0] if layout == "files" else (
            BASELINE if BASELINE in facts else next(iter(facts)))  # fmt: skip
        labels = (baseline, "other")
        against = {}
        for wrapper, fact in facts.items():
            if wrapper == baseline:
                continue
            result, rows = explain(facts[baseline], fact, labels)
            against[wrapper] = _with_versions(result, facts[baseline], fact)
            if mismatches is not None:
                path = mismatch_path(mismatches, name, wrapper,
                                     [str(p) for p in members.values()]
                                     if layout == "files" else None)  # fmt: skip
                pair = f"{name}: {wrapper} vs {baseline}"
                if path in written:
                    raise MismatchesError(f"{path}: the mismatches of {written[path]} and of "
                                          f"{pair} would be one file")  # fmt: skip
                written[path] = pair
                _write_mismatches(against[wrapper], rows, facts[baseline], fact, path)
        if tolerances is not None:  # --stats or a tolerance: per-column statistics
            for wrapper, result in against.items():
                if result["verdict"] == "rows-differ":
                    _examine(result, facts[baseline], facts[wrapper], tolerances)
        golden_sha256 = (golden or {}).get(name)
        golden_check = {
            wrapper: ("match" if fact.sha256 == golden_sha256 else "mismatch")
            for wrapper, fact in facts.items()
        } if golden_sha256 else {}  # fmt: skip
        identical = all(item["verdict"] == "identical" for item in against.values())
        grain = facts[baseline].grain
        report_groups.append(
            {
                "key": name,
                "baseline": baseline,
                "verdict": "identical" if identical and "mismatch" not in golden_check.values()
                else "mismatch",
                "files": {
                    wrapper: {"path": str(fact.path), "sha256": fact.sha256}
                    for wrapper, fact in facts.items()
                },
                "key_columns": list(grain) if grain else None,
                "against_baseline": against,
                "golden": {"expected": golden_sha256, "checks": golden_check},
            }
        )  # fmt: skip
    # Files: as given. Else the baseline first, then the local wrappers, then each mode's.
    wrappers = list(expected) if layout == "files" else sorted(expected, key=_matrix_order)
    for group in report_groups:  # every expected wrapper owes every output
        group["missing"] = [w for w in wrappers if w not in group["files"]]
        if group["missing"]:
            group["verdict"] = "mismatch"
    missing = sorted(set(golden or {}) - set(groups))
    silent = [w for w in wrappers if not any(w in group["files"] for group in report_groups)]
    ok = all(group["verdict"] == "identical" for group in report_groups)
    report = {
        "verdict": "identical" if ok and report_groups and not missing and not silent
        else "mismatch",
        "groups": report_groups,
        "golden_missing": missing,
        "wrappers": wrappers,
        "wrappers_without_outputs": silent,
    }  # fmt: skip
    if tolerances is not None and tolerances.given:
        for group in report_groups:
            group["tolerance"] = _group_tolerance(group)
        within = (report["verdict"] == "mismatch" and report_groups and not missing
                  and not silent and all(group["tolerance"] != "beyond"
                                         for group in report_groups))  # fmt: skip
        report["tolerance"] = {**tolerances.describe(), "warnings": tolerances.warnings(),
                               "verdict": "equal-within-tolerance" if within else "mismatch"}
    return report


def _write_mismatches(result: dict, rows: Mismatched | None, baseline: ParquetFacts,
                      other: ParquetFacts, path: Path) -> None:
    """Write the pair's differing rows to `path` and name the file in `result`; with none,
    remove any file an earlier run left there."""
    if rows is None or not rows.count:  # (a row-order difference alone has no such row)
        remove_stale(path)
        return
    table = mismatch_table(baseline.table, other.table,
                           column_pairs(baseline.table.schema, other.table.schema), rows,
                           baseline.grain, (str(baseline.path), str(other.path)))  # fmt: skip
    write_mismatches(table, path)
    kinds = table.column(KIND).value_counts().to_pylist()
    result["mismatches"] = {"path": str(path), "rows": table.num_rows,
                            **{kind["values"]: kind["counts"] for kind in kinds}}  # fmt: skip


def _examine(result: dict, baseline: ParquetFacts, other: ParquetFacts,
             tolerances: Tolerances) -> None:
    """Add the differing columns' statistics and, with tolerances, whether they are within."""
    grain = baseline.grain if baseline.grain == other.grain else None
    pairs = column_pairs(baseline.table.schema, other.table.schema)
    found = examine(baseline.table, other.table, pairs, grain, tolerances)
    result["column_stats"] = found["columns"]
    if tolerances.given:
        result["within_tolerance"] = found["within"]


def _group_tolerance(group: dict) -> str:
    """identical, within (every difference a float within tolerance) or beyond."""
    if group["verdict"] == "identical":
        return "identical"
    if group["missing"]:
        return "beyond"
    tolerated = set()
    for wrapper, result in group["against_baseline"].items():
        if result["verdict"] == "identical":
            continue
        if not result.get("within_tolerance"):
            return "beyond"
        tolerated.add(wrapper)
    checks = group["golden"]["checks"]  # the baseline's bytes are golden; a tolerated file's
    if any(check == "mismatch" and wrapper not in tolerated for wrapper, check in checks.items()):
        return "beyond"
    return "within"


def _matrix_order(name: str) -> tuple:
    return name != BASELINE, name.partition("@")[2], name


def _with_versions(result: dict, baseline: ParquetFacts, other: ParquetFacts) -> dict:
    """Name the library versions when the manifests say they differ: the usual real cause."""
    if result["verdict"] == "identical":
        return result
    left, right = library_versions(baseline.path), library_versions(other.path)
    for damaged in dict.fromkeys(side for side in (left, right) if isinstance(side, str)):
        result["details"].append(damaged)
    if isinstance(left, str) or isinstance(right, str):
        return result
    differing = sorted(k for k in set(left) & set(right) if left[k] != right[k])
    if differing:
        result["details"].append(
            "library versions differ: "
            + ", ".join(f"{k} {left[k]} vs {right[k]}" for k in differing)
        )
    return result


def _discover(paths: list[Path], wrappers: list[str], layout: str, root: Path | None) -> Found:
    if layout == "events":
        return discover(paths, wrappers, root)
    if root:  # some of a pipeline's folders or files, keyed as the whole folder keys them
        return discover_pipeline(root, wrappers, paths)
    if len(paths) != 1:
        raise InputError("--layout pipeline compares one folder, a pipeline's: output/<name> "
                         "(or --root output/<name> and folders or files under it)")  # fmt: skip
    return discover_pipeline(paths[0], wrappers)


def bless(folder: Path, golden_path: Path, layout: str = "events") -> int:
    """Record the reference runner's outputs under `folder` as the golden hashes."""
    found = _discover([folder], [BASELINE], layout, None)
    if found.unknown:
        raise InputError("\n".join(found.unknown))
    groups = found.groups
    if not groups:
        raise InputError(f"{folder}: no {BASELINE} outputs to bless")
    new = {key: read_facts(members[BASELINE]).sha256 for key, members in groups.items()}
    old = json.loads(golden_path.read_text()) if golden_path.exists() else {}
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            print(f"bless: {key}: {old.get(key, '(none)')} -> {new.get(key, '(removed)')}")
    if old == new:
        print(f"bless: {golden_path} unchanged ({len(new)} outputs)")
        return 0
    golden_path.write_text(json.dumps(new, indent=2, sort_keys=True) + "\n")
    print(f"bless: wrote {golden_path} ({len(new)} outputs)")
    return 0


def _wrapper_list(text: str) -> list[str]:
    """`reference,prefect` or `reference prefect prefect@deployed` (what make passes): the
    wrappers, in order; `<wrapper>@<mode>` is that wrapper's outputs under <mode>/."""
    names = [name for name in text.replace(",", " ").split() if name]
    if not names:
        raise argparse.ArgumentTypeError("name at least one wrapper")
    for name in names:
        wrapper, at, mode = name.partition("@")
        if not wrapper or (at and mode not in MODES):
            raise argparse.ArgumentTypeError(
                f"{name}: not a wrapper's name (a wrapper, or <wrapper>@{'|'.join(MODES)})"
            )
    return list(dict.fromkeys(names))


def direct_files(args: argparse.Namespace) -> bool:
    """Two or more files and no --root: compared as given, with no layout."""
    return (args.layout == "events" and not args.root and len(args.paths) >= 2
            and all(path.is_file() for path in args.paths))  # fmt: skip


def compare(args: argparse.Namespace) -> tuple[dict, list[str]]:
    """The report and the notes on what was set aside, or InputError for what cannot be."""
    golden = _read_golden(args.golden) if args.golden else None
    if direct_files(args):
        if args.expect or golden is not None:
            raise InputError("--expect and --golden name a folder's outputs; files given "
                             "directly are named by their paths (the first is the baseline)")
        found = discover_files(args.paths)
        names = list(next(iter(found.groups.values())))
        return build_report(found.groups, None, names, args.key, "files",
                            _tolerances(args), _mismatches(args)), []
    expect = args.expect or list(KNOWN_WRAPPERS)
    if len(expect) < 2 and golden is None:
        raise InputError(f"only {expect[0]} to compare, and no --golden: one side is no verdict "
                         f"(--expect a second wrapper, or give --golden)")  # fmt: skip
    paths = args.paths or [Path("output")]
    found = _discover(paths, expect, args.layout, args.root)
    if found.unknown:
        raise InputError("\n".join(found.unknown))
    notes = [
        f"{wrapper}: {len(files)} output(s) set aside, not expected (--expect "
        f"{','.join(expect)}), e.g. {files[0]}"
        for wrapper, files in found.unexpected.items()
    ]
    if not found.groups:
        raise InputError(f"no Parquet outputs of {', '.join(expect)} under "
                         f"{', '.join(map(str, paths))}")  # fmt: skip
    return build_report(found.groups, golden, expect, args.key, args.layout,
                        _tolerances(args), _mismatches(args)), notes


def _mismatches(args: argparse.Namespace) -> Path | None:
    return usable_folder(args.mismatches) if args.mismatches else None


def _tolerances(args: argparse.Namespace) -> Tolerances | None:
    """None: no statistics, no tolerance (the report as it always was)."""
    columns: dict[str, dict[str, float]] = {}
    for name, kind, value in args.tolerance or []:
        columns.setdefault(name, {})[kind] = value
    tolerances = Tolerances(rtol=args.rtol or 0.0, atol=args.atol or 0.0, columns=columns)
    return tolerances if tolerances.given or args.stats else None


def _tolerance_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: a tolerance is a finite number >= 0")
    return value


def _column_tolerance(text: str) -> tuple[str, str, float]:
    name, eq, rest = text.rpartition("=")
    kind, colon, value = rest.partition(":")
    if not (name and eq and colon) or kind not in ("rtol", "atol"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: COLUMN=rtol:X or COLUMN=atol:X (e.g. price=rtol:1e-9)")
    return name, kind, _tolerance_value(value)


def _key_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    if not all(names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r}: column names, each once, comma-separated")
    return names


def _read_golden(path: Path) -> dict[str, str]:
    try:
        golden = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"{path}: cannot read the golden hashes ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc})") from None
    if not isinstance(golden, dict):
        raise InputError(f"{path}: not a JSON object of output: sha256")
    return golden


def _report_dir(args: argparse.Namespace) -> Path:
    if args.report_dir:
        return args.report_dir
    if args.root:
        return args.root
    folders = [path for path in args.paths if path.is_dir()]
    return folders[0] if len(args.paths) == 1 and folders else Path("output")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="parity-compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", type=Path, help="folders or files (default: output)")
    parser.add_argument("--expect", type=_wrapper_list, default=None,
                        metavar="W1,W2,...",
                        help=f"the wrappers that must all have every output "
                             f"(default: {','.join(KNOWN_WRAPPERS)}); <wrapper>@deployed: "
                             f"its outputs under deployed/")  # fmt: skip
    parser.add_argument("--golden", type=Path, help="committed sha256 of every expected output")
    parser.add_argument("--key", type=_key_list, metavar="COL1,COL2",
                        help="the grain: the columns that key a row (default: the key the "
                             "manifests record, the events grain, or none: rows as a "
                             "multiset)")  # fmt: skip
    parser.add_argument("--root", type=Path,
                        help="the folder group keys are relative to (default: each folder "
                             "given, or a file's own folder)")  # fmt: skip
    parser.add_argument("--layout", choices=("events", "pipeline"), default="events",
                        help="events: the events pipeline's files (default); pipeline: one "
                             "declared pipeline's folder, output/<name>/")  # fmt: skip
    parser.add_argument("--report-dir", type=Path)
    parser.add_argument("--rtol", type=_tolerance_value, metavar="X",
                        help="relative tolerance for differing float/decimal cells: a second "
                             "verdict, equal within tolerance (exit 0); the strict one stays")
    parser.add_argument("--atol", type=_tolerance_value, metavar="X",
                        help="absolute tolerance for differing float/decimal cells")
    parser.add_argument("--tolerance", type=_column_tolerance, action="append",
                        metavar="COL=rtol:X",
                        help="one column's tolerance, instead of --rtol/--atol for it: "
                             "COL=rtol:X or COL=atol:X (repeatable)")  # fmt: skip
    parser.add_argument("--stats", action="store_true",
                        help="per-column statistics of differing cells (implied by any "
                             "tolerance)")  # fmt: skip
    parser.add_argument("--mismatches", type=Path, metavar="DIR",
                        help="write every differing and one-sided row as Parquet to DIR: "
                             "DIR/<output>.<side>.parquet, a `mismatch` column (differs, "
                             "baseline only, other only), the key, and each other column as "
                             "<name>_baseline and <name>_other")  # fmt: skip
    parser.add_argument("--bless", type=Path, metavar="FOLDER",
                        help="record FOLDER's reference outputs as the golden hashes")  # fmt: skip
    args = parser.parse_args(argv)
    if args.bless:
        if not args.golden:
            parser.error("--bless needs --golden")
        try:
            return bless(args.bless, args.golden, args.layout)
        except ERRORS as exc:
            print(f"bless: error: {exc}".replace("\n", "\nbless: error: "), file=sys.stderr)
            return 2
    report_dir = _report_dir(args)
    for name in REPORTS:  # never a stale verdict: the last report is this run's or none
        (report_dir / name).unlink(missing_ok=True)
    try:
        report, notes = compare(args)
    except ERRORS as exc:
        print(f"compare: error: {exc}".replace("\n", "\ncompare: error: "), file=sys.stderr)
        return 2
    report["set_aside"] = notes
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "parity-report.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = render_markdown(report)
    (report_dir / "parity-report.md").write_text(markdown)
    (report_dir / "parity-report.junit.xml").write_bytes(render_junit(report))
    (report_dir / "parity-report.html").write_text(render_html(report), encoding="utf-8")
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as summary:
            summary.write(markdown)
    print(render_console(report))
    if report["verdict"] == "identical":
        return 0
    return 0 if report.get("tolerance", {}).get("verdict") == "equal-within-tolerance" else 1


def cli() -> NoReturn:
    """`parity-compare` and `python -m compare`: main(), then an exit that Arrow's threads
    cannot turn into an abort (parity.processes.exit_without_teardown)."""
    processes.exit_without_teardown(main())


if __name__ == "__main__":
    cli()
