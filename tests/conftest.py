"""Shared test helpers: paths, and running the real `wfgen` CLI."""

from __future__ import annotations

import compileall
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = ROOT / "tests" / "data"  # reference files, kept in the repository
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """wfgen's bytecode, compiled once (the controller, before any worker): the
    suite starts `python -m wfgen`, serve and the local VMs' stand-ins hundreds
    of times, and with PYTHONDONTWRITEBYTECODE set each would compile every
    module it imports again (a third of a short command's CPU)."""
    if not hasattr(session.config, "workerinput"):
        compileall.compile_dir(ROOT / "wfgen", quiet=2)


def run_cli(*args: str, cwd: Path | None = None, input_text: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m wfgen ARGS` as a real process."""
    return subprocess.run([sys.executable, "-m", "wfgen", *args], cwd=cwd, input=input_text,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli
