"""Errors that reach the user as one clear message and an exit status.

Every error the CLI can expect carries where it happened (file, line, column,
field path) so that the message points at the spot to fix; anything else is a
bug and is reported as such (see cli.main)."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_USAGE = 2  # bad usage or a bad file
EXIT_NOT_RUN = 125  # the job could not run, or the workflow failed otherwise


@dataclass
class Location:
    """A place in a file; line and column are 1-based, 0 when unknown."""

    file: str
    line: int = 0
    column: int = 0
    field: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        if self.field:
            where += f": {self.field}"
        return where


class WfgenError(Exception):
    """An expected failure, shown to the user without a traceback."""

    exit_code = EXIT_NOT_RUN

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class UsageError(WfgenError):
    """Bad command-line usage or a bad input file (exit 2)."""

    exit_code = EXIT_USAGE


class SpecError(UsageError):
    """A job spec that cannot be used; names file, line, column and field.

    The first mistake of a file; `others` holds the rest, so that one run of
    `wfgen validate` (or generate) shows every one of them."""

    others: list[SpecError]

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message, location)
        self.others = []

    def all(self) -> list[SpecError]:
        return [self, *self.others]


class Interrupted(WfgenError):
    """The user stopped a run (Ctrl-C, SIGTERM, SIGHUP); exit 128 + the signal."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class ExecutionFailed(WfgenError):
    """An execution ended without success; the exit status says how (the
    container's own code when it ran and failed, else 125). Its result, if
    any, has already been printed on stdout."""

    def __init__(self, message: str, exit_code: int = EXIT_NOT_RUN) -> None:
        super().__init__(message)
        self.exit_code = exit_code
