"""Files that travel inside the package: the workflow templates and the VM's
startup/shutdown scripts (mapped from the repository's templates/ and startup/
by pyproject.toml, so an installed wfgen finds them without the source tree)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path


@cache
def templates_dir() -> Path:
    return Path(str(resources.files("wfgen.templates")))


@cache
def startup_dir() -> Path:
    return Path(str(resources.files("wfgen.startup")))


def startup_script(name: str) -> str:
    """The text of startup/NAME (for example "startup.sh")."""
    return (startup_dir() / name).read_text(encoding="utf-8")
