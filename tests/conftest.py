"""Shared test helpers: paths, and running the real `wfgen` CLI."""

from __future__ import annotations

import compileall
import subprocess
import sys
from pathlib import Path
from typing import Any

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


# The done-when runs of 1,000 tasks take minutes each: sent to the workers before
# everything else, so that neither is left to run alone at the end while the
# other worker has nothing to do. Matched by xdist group, or by test name where
# xdist's groups do not reach the scheduler (pytest 9.2 ignores the group suffix
# xdist 3.8 adds to node ids, so every test is a scope of its own).
FIRST_GROUPS = ("split_serve_1000", "split_e2e_1000")
FIRST_TESTS = ("::test_a_thousand_tasks_",)


def _first(scope: str) -> bool:
    return scope in FIRST_GROUPS or any(name in scope for name in FIRST_TESTS)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup`, with the longest runs at the head of the queue."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class LongestFirst(LoadGroupScheduling):
        def _assign_work_unit(self, node: Any) -> None:
            for scope in [s for s in self.workqueue if _first(s)][::-1]:
                self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return LongestFirst(config, log)


def run_cli(*args: str, cwd: Path | None = None, input_text: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m wfgen ARGS` as a real process."""
    return subprocess.run([sys.executable, "-m", "wfgen", *args], cwd=cwd, input=input_text,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli
