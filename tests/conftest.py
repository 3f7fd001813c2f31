"""Shared test helpers: paths, and running the real `wfgen` CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = ROOT / "tests" / "data"  # reference files, kept in the repository
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def run_cli(*args: str, cwd: Path | None = None, input_text: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m wfgen ARGS` as a real process."""
    return subprocess.run([sys.executable, "-m", "wfgen", *args], cwd=cwd, input=input_text,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli
