"""The parity verdict: did every wrapper write the same bytes, and if not, exactly how not.

    python -m compare [PATHS...] [--golden compare/golden.json] [--report-dir output]
    python -m compare --bless FOLDER [--golden compare/golden.json]

Groups the same logical file from each wrapper (discovery.py), compares every wrapper's file
with the reference runner's, and, given --golden, every file with its committed sha256.
Writes parity-report.json and parity-report.md (fit for a CI job summary) to --report-dir.
Exit 0 all identical, 1 any mismatch, 2 a usage or input error.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from compare.discovery import DiscoveryError, discover
from compare.parquet_diff import NotParquetError, ParquetFacts, explain, read_facts
from compare.report import render_console, render_markdown

BASELINE = "reference"


def build_report(groups: dict[str, dict[str, Path]], golden: dict[str, str] | None) -> dict:
    report_groups = []
    for key, members in groups.items():
        facts = {wrapper: read_facts(path) for wrapper, path in members.items()}
        baseline = BASELINE if BASELINE in facts else next(iter(facts))
        against = {
            wrapper: _with_versions(explain(facts[baseline], fact), facts[baseline], fact)
            for wrapper, fact in facts.items()
            if wrapper != baseline
        }
        expected = (golden or {}).get(key)
        golden_check = {
            wrapper: ("match" if fact.sha256 == expected else "mismatch")
            for wrapper, fact in facts.items()
        } if expected else {}  # fmt: skip
        identical = all(item["verdict"] == "identical" for item in against.values())
        report_groups.append(
            {
                "key": key,
                "baseline": baseline,
                "verdict": "identical" if identical and "mismatch" not in golden_check.values()
                else "mismatch",
                "files": {
                    wrapper: {"path": str(fact.path), "sha256": fact.sha256,
                              "content_sha256": fact.content_sha256}
                    for wrapper, fact in facts.items()
                },
                "against_baseline": against,
                "golden": {"expected": expected, "checks": golden_check},
            }
        )  # fmt: skip
    wrappers = sorted({w for group in report_groups for w in group["files"]},
                      key=lambda name: (name != BASELINE, name))  # fmt: skip
    for group in report_groups:  # every wrapper seen anywhere owes every output
        group["missing"] = [w for w in wrappers if w not in group["files"]]
        if group["missing"]:
            group["verdict"] = "mismatch"
    missing = sorted(set(golden or {}) - set(groups))
    ok = all(group["verdict"] == "identical" for group in report_groups) and not missing
    return {
        "verdict": "identical" if ok and report_groups else "mismatch",
        "groups": report_groups,
        "golden_missing": missing,
        "wrappers": wrappers,
    }


def _with_versions(result: dict, baseline: ParquetFacts, other: ParquetFacts) -> dict:
    """Name the library versions when the manifests say they differ: the usual real cause."""
    if result["verdict"] == "identical":
        return result
    left, right = _manifest_versions(baseline.path), _manifest_versions(other.path)
    differing = sorted(k for k in set(left) & set(right) if left[k] != right[k])
    if differing:
        result["details"].append(
            "library versions differ: "
            + ", ".join(f"{k} {left[k]} vs {right[k]}" for k in differing)
        )
    return result


def _manifest_versions(path: Path) -> dict[str, str]:
    stem = path.name.removesuffix(".parquet").removesuffix(".rejects")
    manifest = path.with_name(f"{stem}.manifest.json")
    if not manifest.exists():
        return {}
    versions = json.loads(manifest.read_text()).get("versions", {})
    return {k: v for k, v in versions.items() if k != "python"} | {"python": versions.get("python")}


def bless(folder: Path, golden_path: Path) -> int:
    """Record the reference runner's outputs under `folder` as the golden hashes."""
    groups = discover([folder])
    new = {}
    for key, members in groups.items():
        if BASELINE not in members:
            print(f"bless: {key} has no {BASELINE} output", file=sys.stderr)
            return 2
        new[key] = read_facts(members[BASELINE]).sha256
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", type=Path, help="folders or files (default: output)")
    parser.add_argument("--golden", type=Path, help="committed sha256 of every expected output")
    parser.add_argument("--report-dir", type=Path, default=Path("output"))
    parser.add_argument("--bless", type=Path, metavar="FOLDER",
                        help="record FOLDER's reference outputs as the golden hashes")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if args.bless:
            if not args.golden:
                parser.error("--bless needs --golden")
            return bless(args.bless, args.golden)
        golden = json.loads(args.golden.read_text()) if args.golden else None
        groups = discover(args.paths or [Path("output")])
        if not groups:
            raise DiscoveryError(f"no Parquet outputs under {', '.join(map(str, args.paths))}")
        report = build_report(groups, golden)
    except (DiscoveryError, NotParquetError, FileNotFoundError, json.JSONDecodeError) as exc:
        print(f"compare: error: {exc}", file=sys.stderr)
        return 2
    args.report_dir.mkdir(parents=True, exist_ok=True)
    (args.report_dir / "parity-report.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = render_markdown(report)
    (args.report_dir / "parity-report.md").write_text(markdown)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as summary:
            summary.write(markdown)
    print(render_console(report))
    return 0 if report["verdict"] == "identical" else 1


if __name__ == "__main__":
    sys.exit(main())
