"""`pip install .` (not editable) carries the templates, the VM scripts, the
stand-ins and the dashboard's pages inside the package: run the installed copy
away from the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.xdist_group("packaging")


def test_installed_package_generates_and_runs_locally(tmp_path):
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT)],
        capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    assert "Warning" not in build.stderr, build.stderr  # the first `make demo` prints none
    installed = target / "wfgen"
    assert (installed / "templates" / "workflow.yaml.j2").is_file()
    assert os.access(installed / "startup" / "startup.sh", os.R_OK)
    assert os.access(installed / "local" / "standins" / "docker", os.X_OK)
    assert (installed / "server" / "discovery" / "workflows.v1.json").is_file()  # serve's check
    assert (installed / "server" / "ui" / "templates" / "home.html.j2").is_file()
    assert (installed / "server" / "ui" / "static" / "style.css").is_file()
    env = {**os.environ, "PYTHONPATH": str(target), "TMPDIR": str(tmp_path)}
    cwd = tmp_path  # not the source tree: only the installed copy is importable
    job = ROOT / "examples" / "hello.yaml"
    gen = subprocess.run([sys.executable, "-m", "wfgen", "generate", str(job)], cwd=cwd,
                         env=env, capture_output=True, text=True, timeout=60)
    assert gen.returncode == 0, gen.stderr
    assert "startup_script_b64" in gen.stdout
    probe = subprocess.run([sys.executable, "-c", "import wfgen; print(wfgen.__file__)"],
                           cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert probe.stdout.startswith(str(target))
    run = subprocess.run([sys.executable, "-m", "wfgen", "run", "--local", "--on-host", str(job)],
                         cwd=cwd,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert '"status": "succeeded"' in run.stdout


def test_pyproject_lists_every_package_of_the_source_tree():
    """pyproject.toml names the packages one by one (templates/ and startup/ map into
    wfgen): a package added under wfgen/ but not listed would be missing from a
    `pip install .`."""
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "tool"]["setuptools"]["packages"]
    # every directory: setuptools takes data directories (standins, ui/static) for
    # namespace packages, and warns about each one not listed
    on_disk = {".".join(d.relative_to(ROOT).parts) for d in [ROOT / "wfgen",
               *(ROOT / "wfgen").rglob("*")] if d.is_dir() and d.name != "__pycache__"}
    assert set(listed) == on_disk | {"wfgen.templates", "wfgen.startup"}
    assert not (ROOT / "setup.py").exists()
