"""The suite's own scheduling (tests/conftest.py): under `-n 2 --dist loadgroup`
the 1,000-task runs start before everything else, so that the suite does not
end with one of them running alone on one worker."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIRST_TESTS, ROOT, _first

SUITE = {
    "conftest.py": (f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                    "from tests.conftest import pytest_xdist_make_scheduler  # noqa: F401\n"),
    "test_a.py": ("import os\nimport pytest\n\n\n@pytest.mark.parametrize('i', range(8))\n"
                  "def test_quick(i):\n    _note(f'quick{i}')\n\n\n"
                  "def _note(what):\n    with open(os.environ['ORDER'], 'a') as f:\n"
                  "        f.write(what + ' ' + os.environ['PYTEST_XDIST_WORKER'] + '\\n')\n"),
    "test_z.py": ("from test_a import _note\n\n\ndef test_a_thousand_tasks_here():\n"
                  "    _note('long1')\n\n\ndef test_a_thousand_tasks_there():\n"
                  "    _note('long2')\n"),
}


def test_the_longest_runs_go_first_one_to_each_worker(tmp_path):
    for name, text in SUITE.items():
        (tmp_path / name).write_text(text)
    order = _run_two_workers(tmp_path)
    firsts: dict[str, str] = {}
    for line in order.read_text().splitlines():
        test, worker = line.split()
        firsts.setdefault(worker, test)
    assert sorted(firsts.values()) == ["long1", "long2"], order.read_text()


GROUPED = ("import os\nimport pytest\n\n\n@pytest.mark.xdist_group('one')\n"
           "@pytest.mark.parametrize('i', range(6))\n"
           "def test_grouped(i):\n    with open(os.environ['ORDER'], 'a') as f:\n"
           "        f.write(os.environ['PYTEST_XDIST_WORKER'] + '\\n')\n")


def test_an_xdist_group_runs_on_one_worker(tmp_path):
    """The suite's groups (one serve per module, the local runs kept apart) hold
    only if xdist's group reaches the scheduler: pytest 9.2 drops it (every test
    became a scope of its own), so pyproject keeps pytest below 9.2."""
    (tmp_path / "test_g.py").write_text(GROUPED)
    order = _run_two_workers(tmp_path)
    workers = order.read_text().split()
    assert len(workers) == 6 and len(set(workers)) == 1, workers


def _run_two_workers(folder: Path) -> Path:
    """Run the suite in `folder` under `-n 2 --dist loadgroup`; the file where
    its tests noted what ran where."""
    order = folder / "order.txt"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-n", "2", "--dist", "loadgroup", str(folder)],
                         capture_output=True, text=True, timeout=120, cwd=folder,
                         env={**_env(), "ORDER": str(order)})
    assert run.returncode == 0, run.stdout + run.stderr
    return order


def _env() -> dict[str, str]:
    """This run's environment without the xdist worker's own variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def test_the_names_it_looks_for_are_the_thousand_task_tests():
    """Renaming one of them would quietly put it back at its place in the queue."""
    found = []
    for path in (ROOT / "tests").rglob("test_*.py"):
        tree = ast.parse(Path(path).read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                nodeid = f"{path.relative_to(ROOT)}::{node.name}"
                if _first(nodeid):
                    found.append(nodeid)
    assert sorted(found) == [
        "tests/cloud/test_split_serve.py::test_a_thousand_tasks_run_then_status_and_logs_"
        "find_a_task",
        "tests/test_split.py::test_a_thousand_tasks_at_parallelism_100_exact_counts_first_"
        "failed_code"], (found, FIRST_TESTS)
