"""The report as JUnit XML, for CI test views: one testcase per output group.

A group that is not identical (a file differing from the baseline's, a golden mismatch, a
wrapper that lacks it) is a failure whose message holds the group's cause lines; a golden
output nobody produced is a failing testcase of its own. Deterministic bytes.
"""

import re
import xml.etree.ElementTree as ET

from compare.report import _bounded, _problems

# Characters XML 1.0 cannot hold at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def group_causes(report: dict, group: dict) -> list[str]:
    """The problem lines the console shows for this one group."""
    alone = {**report, "groups": [group], "golden_missing": [], "wrappers_without_outputs": []}
    if alone.get("tolerance"):  # the run's warnings belong to no one group
        alone["tolerance"] = {**alone["tolerance"], "warnings": []}
    return [line for line in _problems(alone) if not line.startswith("hint: ")]


def render_junit(report: dict) -> bytes:
    cases = []
    for group in report["groups"]:
        causes = group_causes(report, group) if group["verdict"] != "identical" else []
        cases.append((group["key"], causes or (["mismatch"] if group["verdict"] != "identical"
                                               else [])))  # fmt: skip
    cases += [(key, [f"{key}: expected by the golden hashes but not produced"])
              for key in report["golden_missing"]]  # fmt: skip
    failures = sum(1 for _, causes in cases if causes)
    root = ET.Element("testsuites", {"tests": str(len(cases)), "failures": str(failures)})
    suite = ET.SubElement(root, "testsuite", {
        "name": "parity-compare", "tests": str(len(cases)), "failures": str(failures),
        "errors": "0", "skipped": "0",
    })  # fmt: skip
    for key, causes in cases:
        case = ET.SubElement(suite, "testcase", {"classname": "parity", "name": _clean(key)})
        if causes:
            text = _clean("\n".join(_bounded(causes)))
            failure = ET.SubElement(case, "failure", {"message": text, "type": "mismatch"})
            failure.text = text
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _clean(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
