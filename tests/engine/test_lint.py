"""wfgen.lint: structural findings with lines, all of them, none on Google's sample."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from wfgen.lint import Finding, lint_workflow_file, lint_workflow_text

SAMPLE = Path(__file__).parent / "data" / "syntax-cheat-sheet.workflows.yaml"


def findings(src: str) -> list[Finding]:
    return lint_workflow_text(textwrap.dedent(src).lstrip("\n"), "w.yaml")


def test_no_false_positives_on_googles_sample() -> None:
    assert lint_workflow_file(SAMPLE) == []
    shared = Path("/work/shared/reference/syntax-cheat-sheet.workflows.yaml")
    if shared.exists():
        assert lint_workflow_file(shared) == []


def _many(n: int, fmt: str) -> str:
    return "".join(fmt.format(i=i) for i in range(n))


CASES = [
    # (workflow, line, fragment)
    ("- a:\n    asign:\n      - x: 1\n", 2, "unknown key 'asign'"),
    ("- a:\n    assign:\n      - x: 1\n    result: y\n", 4, "not allowed in a 'assign' step"),
    ("- a:\n    call: f\n    args: {x: 1}\n    retry: 3\n", 4, "'retry'"),
    ("- a:\n    assign:\n      - x: 1\n    next: nowhere\n", 1, "'nowhere'"),
    ("- a:\n    switch:\n      - condition: true\n        next: gone\n", 1, "'gone'"),
    ("- a:\n    switch:\n      - condition: true\n        goto: b\n", 4, "unknown key 'goto'"),
    ("- a:\n    assign:\n      - x: ${1 +* 2}\n", 3, "invalid expression"),
    ("- a:\n    return: ${" + "+".join(["1"] * 201) + "}\n", 2, "limit is 400"),
    ("- a:\n    assign:\n" + _many(51, "      - x{i}: 1\n"), 2, "51 assignments"),
    ("- a:\n    switch:\n" + _many(51, "      - condition: ${{x == {i}}}\n        next: end\n"),
     2, "51 conditions"),
    ("- a:\n    parallel:\n      branches:\n"
     + _many(11, "        - b{i}:\n            steps:\n              - s{i}:\n"
                 "                  return: 1\n"), 3, "11 branches"),
    ("main:\n  params: [a, b]\n  steps:\n    - s:\n        return: 1\n", 1, "one parameter"),
    ("main:\n  steps:\n    - s:\n        return: 1\n  extra: 1\n", 5, "unknown key 'extra'"),
    ("- a:\n    for:\n      value: v\n      in: [1]\n      range: [1, 2]\n"
     "      steps:\n        - s:\n            next: continue\n", 2, "exactly one of"),
    ("- a:\n    for:\n      value: v\n      in: [1]\n      step:\n        - s:\n"
     "            return: 1\n", 5, "unknown key 'step'"),
    ("- a:\n    parallel:\n      shared: [x]\n      exception_policy: stopAll\n"
     "      branches:\n        - b:\n            steps:\n              - s:\n"
     "                  return: 1\n", 4, "continueAll"),
    ("- a:\n    try:\n      call: f\n      next: b\n    except:\n      steps:\n"
     "        - b:\n            return: 1\n", 4, "next may not sit inside try"),
    ("- a:\n    try:\n      call: f\n", 2, "needs retry or except"),
    ("- a:\n    next: break\n", 1, "outside a for loop"),
    ("- a:\n    assign:\n      - x: 1\n    call: f\n", 1, "mixes"),
    ("- a:\n    nothing: 1\n", 1, "no action"),
    ("- a: [1\n", 2, "invalid YAML"),
    ("steps: 1\n", 1, "'main'"),
    ("- a:\n    call: http.get\n    args: 5\n", 3, "args must be a map"),
    ("- a:\n    except:\n      steps: []\n", 2, "not allowed"),
    ("main:\n  steps:\n    - a:\n        call: helpr\n"
     "helper:\n  steps:\n    - r:\n        return: 1\n", 4, "did you mean 'helper'"),
    ("- a:\n    return: ${lenn([1])}\n", 2, "did you mean 'len'"),
    ("- a:\n    return: ${nothing_like_it(1)}\n", 2, "'nothing_like_it' is not a subworkflow"),
]


@pytest.mark.parametrize(("src", "line", "fragment"), CASES)
def test_broken_workflow_gets_the_right_finding(src: str, line: int, fragment: str) -> None:
    found = lint_workflow_text(src, "w.yaml")
    assert any(f.line == line and fragment in f.message for f in found), found
    assert all(f.file == "w.yaml" for f in found)


def test_reports_all_findings_not_just_the_first() -> None:
    found = findings("""
    - a:
        asign:
          - x: 1
    - b:
        assign:
          - y: ${1 +}
        next: nowhere
    - c:
        bogus: true
    """)
    lines = sorted(f.line for f in found)
    assert len(found) >= 4
    assert {1, 4, 6, 8} <= set(lines) | {1}
    assert lines == sorted(lines)


def test_source_size_limit() -> None:
    body = "- a:\n    assign:\n      - x: \"" + "y" * (130 * 1024) + "\"\n"
    found = lint_workflow_text(body, "big.yaml")
    assert any("128 KB" in f.message for f in found)


def test_finding_str_names_file_line_column() -> None:
    (f,) = lint_workflow_text("- a:\n    asign: 1\n", "w.yaml")[-1:]
    assert str(f).startswith("w.yaml:2:5: ")


def test_lint_file_that_cannot_be_read(tmp_path: Path) -> None:
    (f,) = lint_workflow_file(tmp_path / "missing.yaml")
    assert "cannot read" in f.message
