"""The report as text: one verdict line per group and a matrix, for a terminal and for Markdown.

Both stay bounded (MAX_BYTES, under the 1 MiB GitHub allows a job summary): past it, the
problems are counted, not listed, and parity-report.json holds every one.
"""

from compare.tolerance import stat_line

SYMBOLS = {
    "identical": "=",
    "content-equal": "~",
    "schema-differs": "S",
    "order-differs": "O",
    "rows-differ": "R",
}
LEGEND = ("= same bytes, ~ same content but other bytes, S schema differs, O row order differs, "
          "R rows differ, - missing")  # fmt: skip
MAX_BYTES = 768 * 1024


def _cells(report: dict, group: dict) -> list[str]:
    cells = []
    for wrapper in report["wrappers"]:
        if wrapper not in group["files"]:
            cells.append("-")
        elif wrapper == group["baseline"]:
            cells.append("base")
        else:
            cells.append(SYMBOLS[group["against_baseline"][wrapper]["verdict"]])
        if group["golden"]["checks"].get(wrapper) == "mismatch":
            cells[-1] += "!"
    return cells


def _problems(report: dict) -> list[str]:
    lines = [f"{wrapper}: no outputs at all (expected: {', '.join(report['wrappers'])})"
             for wrapper in report["wrappers_without_outputs"]]  # fmt: skip
    for group in report["groups"]:
        for wrapper, result in group["against_baseline"].items():
            if result["verdict"] != "identical":
                where = "" if group["key"] == group["baseline"] else f"{group['key']}: "
                lines.append(f"{where}{wrapper} vs {group['baseline']}: {result['verdict']}")
                lines.extend(f"    {detail}" for detail in result["details"])
                lines.extend(f"    {stat_line(entry)}" for entry in result.get("column_stats", []))
                if "mismatches" in result:
                    lines.append(f"    mismatches: {result['mismatches']['rows']} row(s) in "
                                 f"{result['mismatches']['path']}")
                if "within_tolerance" in result:
                    lines.append(f"    {'within' if result['within_tolerance'] else 'NOT within'}"
                                 f" tolerance")
        for wrapper, check in group["golden"]["checks"].items():
            if check == "mismatch":
                lines.append(
                    f"{group['key']}: {wrapper} sha256 {group['files'][wrapper]['sha256']} "
                    f"is not the golden {group['golden']['expected']}"
                )
        lines.extend(f"{group['key']}: {wrapper} produced no such output"
                     for wrapper in group["missing"])  # fmt: skip
    lines.extend(f"{key}: expected by the golden hashes but not produced"
                 for key in report["golden_missing"])  # fmt: skip
    tolerance = report.get("tolerance")
    if tolerance:
        lines.extend(f"{group['key']}: differences within tolerance" if group["tolerance"] ==
                     "within" else f"{group['key']}: differences beyond tolerance"
                     for group in report["groups"] if group["tolerance"] != "identical")
        lines.extend(tolerance["warnings"])
    return lines + _partial_run_hint(report)


def _partial_run_hint(report: dict) -> list[str]:
    """When outputs are missing and nothing else differs, the likely cause is a partial run
    (one wrapper, one date): say how to complete it or narrow the verdict."""
    groups = report["groups"]
    verdicts = [
        result["verdict"] for group in groups for result in group["against_baseline"].values()
    ]
    checks = [check for group in groups for check in group["golden"]["checks"].values()]
    differing = any(verdict != "identical" for verdict in verdicts) or "mismatch" in checks
    missing = {(group["key"], wrapper) for group in groups for wrapper in group["missing"]}
    if differing or not (missing or report["golden_missing"]):
        return []
    complete = [w for w in report["wrappers"] if all(w in group["files"] for group in groups)]
    dates = sorted({key.split("/")[0].removeprefix("date-") for key, _ in missing
                    if key.startswith("date-")})  # fmt: skip
    ways = [f"`make <wrapper> DATE={dates[0]}` for each missing wrapper"] if dates else []
    golden_missing = report["golden_missing"]
    days = sorted(key.split("/")[1] for key in golden_missing if key.startswith("backfill/"))
    if days:
        ways.append(f"`make backfill START={days[0]} END={days[-1]}`")
    if len(complete) >= 2:
        ways.append(f"`make compare EXPECT=\"{' '.join(complete)}\"` for the wrappers that "
                    f"wrote every output")  # fmt: skip
    ways.append("`make all` for everything")
    return [f"hint: only missing outputs differ, as after a partial run: {'; or '.join(ways)}"]


def render_console(report: dict) -> str:
    width = max(len(group["key"]) for group in report["groups"])
    columns = [max(9, len(wrapper)) for wrapper in report["wrappers"]]  # prefect@deployed: 16
    header = f"{'output':<{width}}  " + "  ".join(
        f"{wrapper:>{column}}" for wrapper, column in zip(report["wrappers"], columns, strict=True)
    )
    lines = [header]
    for group in report["groups"]:
        cells = "  ".join(
            f"{cell:>{column}}" for cell, column in zip(_cells(report, group), columns, strict=True)
        )
        lines.append(f"{group['key']:<{width}}  {cells}")
    lines += ["", LEGEND + ", ! not the golden sha256",
              *_bounded(_problems(report) + report.get("set_aside", [])), ""]  # fmt: skip
    groups = len(report["groups"])
    if report["verdict"] == "identical":
        lines.append(f"VERDICT: IDENTICAL: {groups} outputs, byte for byte, across "
                     f"{', '.join(report['wrappers'])}")  # fmt: skip
    else:
        lines.append(f"VERDICT: MISMATCH: see above ({groups} outputs compared)")
        lines += _tolerance_verdict(report)
    return "\n".join(lines)


def _tolerance_verdict(report: dict) -> list[str]:
    tolerance = report.get("tolerance")
    if not tolerance:
        return []
    if tolerance["verdict"] == "equal-within-tolerance":
        return [f"VERDICT (tolerance): EQUAL WITHIN TOLERANCE: every difference is a float or "
                f"decimal cell within it ({len(report['groups'])} outputs; the strict verdict "
                f"stays MISMATCH)"]
    return ["VERDICT (tolerance): MISMATCH: differences beyond tolerance"]


def render_markdown(report: dict) -> str:
    verdict = "identical" if report["verdict"] == "identical" else "**MISMATCH**"
    lines = [
        "## Orchestrator parity",
        "",
        f"Verdict: {verdict} ({len(report['groups'])} outputs; {LEGEND}; ! not golden)",
        *[f"\n{line}" for line in _tolerance_verdict(report)],
        "",
        "| output | " + " | ".join(report["wrappers"]) + " |",
        "|---" * (len(report["wrappers"]) + 1) + "|",
    ]
    for group in report["groups"]:
        lines.append(f"| `{group['key']}` | " + " | ".join(_cells(report, group)) + " |")
    problems = _problems(report) + report.get("set_aside", [])
    if problems:
        lines += ["", "```", *_bounded([line.replace("```", "` ` `") for line in problems]),
                  "```"]  # fmt: skip
    return _cut("\n".join(lines)) + "\n"


def _bounded(lines: list[str]) -> list[str]:
    """As many whole lines as fit in MAX_BYTES, then one line counting the rest."""
    kept, size = [], 0
    for n, line in enumerate(lines):
        size += len(line.encode()) + 1
        if size > MAX_BYTES:
            return [*kept, f"… {len(lines) - n} more line(s) not shown: see parity-report.json"]
        kept.append(line)
    return kept


def _cut(text: str) -> str:
    """The matrix itself, for thousands of outputs, is cut too: never past 1 MiB in all."""
    data = text.encode()
    if len(data) <= 2 * MAX_BYTES - 4096:
        return text
    return data[: 2 * MAX_BYTES - 4096].decode(errors="ignore") + "\n… cut: see parity-report.json"
