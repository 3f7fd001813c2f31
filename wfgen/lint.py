"""Structural checks of any Cloud Workflows definition, for `wfgen validate`.

Built on the engine's own parser (wfgen.engine.parse), so what validate accepts
is exactly what `wfgen run --local` can run: unknown or misplaced keys, `next`
targets that do not exist, malformed or over-long (> 400 characters)
expressions, more than 50 assignments in a step or 50 conditions in a switch,
more than 10 branches in a parallel step, a main with more than one parameter,
a source over 128 KB. Every finding is reported, not just the first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wfgen.engine.parse import parse_definition


@dataclass(frozen=True)
class Finding:
    """One problem; line and column are 1-based (0 when unknown)."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        return f"{where}: {self.message}"


def lint_workflow_text(text: str, filename: str) -> list[Finding]:
    """All structural findings of a workflow definition (empty when it is fine)."""
    _wf, issues = parse_definition(text, filename)
    return [Finding(filename, i.line, i.column, i.message) for i in issues]


def lint_workflow_file(path: str | Path) -> list[Finding]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(str(p), 0, 0, f"cannot read the file: {exc}")]
    return lint_workflow_text(text, str(p))
