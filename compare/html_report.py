"""The report as one self-contained HTML page: the verdict, the matrix, the problem lines.

No external assets and no JavaScript; every value is escaped (html.escape). Bounded like the
Markdown (report.MAX_BYTES): past it, the outputs and the problems are counted, not listed.
"""

from html import escape

from compare.report import LEGEND, MAX_BYTES, _cells, _problems

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
.verdict { font-size: 1.3em; font-weight: bold; padding: .5em; border-radius: 4px; }
.identical { background: #dfd; } .mismatch { background: #fdd; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #999; padding: .2em .6em; text-align: center; }
td.key { text-align: left; font-family: monospace; }
td.bad { background: #fcc; } td.ok { background: #efe; }
pre { background: #f4f4f4; padding: 1em; white-space: pre-wrap; }
"""


def verdict_line(report: dict) -> str:
    """The console's last line."""
    groups = len(report["groups"])
    if report["verdict"] == "identical":
        return (f"VERDICT: IDENTICAL: {groups} outputs, byte for byte, across "
                f"{', '.join(report['wrappers'])}")  # fmt: skip
    return f"VERDICT: MISMATCH: see below ({groups} outputs compared)"


def render_html(report: dict) -> str:
    verdict = "identical" if report["verdict"] == "identical" else "mismatch"
    head = "".join(f"<th>{escape(wrapper)}</th>" for wrapper in report["wrappers"])
    rows, size = [], 0
    for n, group in enumerate(report["groups"]):
        cells = "".join(
            f'<td class="{"ok" if cell in ("base", "=") else "bad"}">{escape(cell)}</td>'
            for cell in _cells(report, group)
        )
        row = f'<tr><td class="key">{escape(group["key"])}</td>{cells}</tr>'
        size += len(row.encode()) + 1
        if size > MAX_BYTES // 2:
            rows.append(f'<tr><td colspan="{len(report["wrappers"]) + 1}">… '
                        f"{len(report['groups']) - n} more output(s) not shown: see "
                        f"parity-report.json</td></tr>")  # fmt: skip
            break
        rows.append(row)
    problems = _escaped_lines(_problems(report) + report.get("set_aside", []), MAX_BYTES // 2)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Orchestrator parity</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Orchestrator parity</h1>",
        f'<p class="verdict {verdict}" id="verdict">{escape(verdict_line(report))}</p>',
        f"<table><thead><tr><th>output</th>{head}</tr></thead><tbody>",
        *rows,
        "</tbody></table>",
        f"<p>{escape(LEGEND)}, ! not the golden sha256</p>",
    ]
    if problems:
        parts += ["<h2>Problems</h2>", "<pre>" + "\n".join(problems) + "</pre>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _escaped_lines(lines: list[str], budget: int) -> list[str]:
    """Each line escaped, as many as fit in `budget` bytes (escaped), then a count of the rest."""
    kept, size = [], 0
    for n, line in enumerate(lines):
        text = escape(line)
        size += len(text.encode()) + 1
        if size > budget:
            return [*kept, f"… {len(lines) - n} more line(s) not shown: see parity-report.json"]
        kept.append(text)
    return kept
