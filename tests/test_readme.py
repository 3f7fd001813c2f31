"""The README's command blocks run as written, where they need no cloud.

Every fenced block of README.md is read. Shell lines (a `\\` continues a line)
run one after another with bash in one scratch directory holding `examples/`,
when they are local commands: `wfgen init|validate|generate|schema` and
`wfgen run --local`. Everything else is skipped: commands against Google Cloud
or serve (`wfgen deploy/run/status/...`, gcloud, curl), `make` (the developer
commands; `make test` would run this very suite), `$EDITOR`, and transcripts
(a block whose first line starts with `$ `). A block can also be skipped by
name, on the line before its fence:

    <!-- readme-test: cloud -->         needs a cloud or a running `wfgen serve`
    <!-- readme-test: illustrative -->  output, placeholders: not meant to run

A `yaml` block holding a job spec (`container:`) is checked with
`wfgen validate`. Without a container engine, `run --local` without
`--on-host` must stop with the README's exit status 125 and say why."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from wfgen.local.vm import container_engine_works

pytestmark = pytest.mark.xdist_group("readme")
MARKER = re.compile(r"<!--\s*readme-test:\s*(cloud|illustrative)\s*-->")
LOCAL_WFGEN = re.compile(r"wfgen\s+(init|validate|generate|schema)\b|wfgen\s+run\s+.*--local\b")


@dataclass
class Block:
    line: int  # of the opening fence
    info: str  # the fence's info string (yaml, json, or empty)
    text: str
    marker: str | None  # cloud / illustrative, from the line before the fence


def blocks(markdown: str) -> list[Block]:
    found, lines = [], markdown.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = MARKER.search(lines[i - 1]) if i else None
        found.append(Block(i + 1, fence.group(1), "\n".join(lines[i + 1:end]),
                           before.group(1) if before else None))
        i = end + 1
    return found


def commands(block: Block) -> list[str]:
    """The block's shell commands, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", block.text)
    return [line.strip() for line in joined.splitlines() if line.strip()
            and not line.lstrip().startswith("#")]


def runnable(command: str) -> bool:
    return bool(LOCAL_WFGEN.match(command)) and "$EDITOR" not in command


README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = blocks(README)
SHELL = [b for b in BLOCKS if b.info in ("", "sh", "bash", "shell") and b.marker is None
         and not b.text.lstrip().startswith("$ ")]
RUNS = [(b.line, c) for b in SHELL for c in commands(b) if runnable(c)]
BY_BLOCK = {line: [c for n, c in RUNS if n == line] for line, _ in RUNS}  # in README order
SPECS = [b for b in BLOCKS if b.info == "yaml" and re.search(r"^container:", b.text, re.M)]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A scratch directory with examples/ and a job.yaml (the one `wfgen init` writes),
    where the README's commands run as a user runs them from a clone."""
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", work / "examples")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "TMPDIR": str(work)}
    env.pop("WORKFLOWS_EMULATOR_HOST", None)
    made = subprocess.run([sys.executable, "-m", "wfgen", "init", "starter"], cwd=work,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    shutil.copy(work / "starter" / "job.yaml", work / "job.yaml")
    return work, env


def test_the_readme_has_local_commands_to_run():
    """The walk-through and 'Run locally' are found (the test cannot go empty)."""
    found = [c for _, c in RUNS]
    assert any(c.startswith("wfgen init my-job") for c in found)
    assert any("--on-host job.yaml" in c for c in found)
    assert any("--heartbeat 2s --fault preempt@3s" in c for c in found), found
    assert SPECS, "the README's job spec example"


@pytest.mark.parametrize("line", list(BY_BLOCK), ids=[f"L{n}" for n in BY_BLOCK])
def test_readme_block_runs_as_written(workdir, line):
    """A block's commands in order (init, then validate what it made, ...)."""
    work, env = workdir
    for command in BY_BLOCK[line]:
        done = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True,
                              text=True, timeout=180)
        where = f"README.md:{line}: {command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, where
        if " run " in f" {command} " and "--on-host" not in command and \
                not container_engine_works():
            # the README: without an engine and without --on-host, nothing starts: 125
            assert done.returncode == 125 and "no container engine" in done.stderr, where
            continue
        assert done.returncode == 0, where


@pytest.mark.parametrize("block", SPECS, ids=[f"L{b.line}" for b in SPECS])
def test_readme_job_spec_validates(tmp_path, block):
    spec = tmp_path / "job.yaml"
    spec.write_text(block.text + "\n", encoding="utf-8")
    workdir = re.search(r"^workdir:\s*(\S+)", block.text, re.M)
    if workdir:  # the folder a spec's workdir names sits beside it
        (tmp_path / workdir.group(1)).mkdir(parents=True)
    done = subprocess.run([sys.executable, "-m", "wfgen", "validate", str(spec)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"README.md:{block.line}:\n{done.stdout}{done.stderr}"


def test_blocks_can_be_marked_as_cloud_or_illustrative():
    text = ("<!-- readme-test: cloud -->\n```\nwfgen init x\n```\n"
            "<!-- readme-test: illustrative -->\n```\nwfgen validate y\n```\n"
            "```\nwfgen init z\n```\n")
    found = blocks(text)
    assert [b.marker for b in found] == ["cloud", "illustrative", None]
    assert commands(found[2]) == ["wfgen init z"] and runnable("wfgen init z")
    assert not runnable("wfgen run job.yaml --detach") and not runnable("gcloud workflows list")
    assert runnable("wfgen run --local --on-host job.yaml") and not runnable("$EDITOR job.yaml")
