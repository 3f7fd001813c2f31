"""Syntax errors and findings for workflow definitions (shared by the engine and lint)."""

from __future__ import annotations

from dataclasses import dataclass

from wfgen.errors import Location, UsageError


@dataclass(frozen=True)
class Issue:
    """One problem found in a definition; line/column are 1-based (0 = unknown)."""

    line: int
    column: int
    message: str


class WorkflowSyntaxError(UsageError):
    """A definition the engine cannot run; names file, line and column."""

    def __init__(
        self,
        message: str,
        line: int = 0,
        column: int = 0,
        filename: str = "",
        issues: list[Issue] | None = None,
    ) -> None:
        super().__init__(message, Location(filename or "<workflow>", line, column))
        self.line = line
        self.column = column
        self.filename = filename
        self.issues = issues or [Issue(line, column, message)]
