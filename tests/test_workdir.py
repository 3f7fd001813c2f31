"""workdir packing (wfgen.job.workdir): the same tree gives the same bytes, ignore
rules are git's, and the spec, the generated workflow and the execution argument
carry it as designed."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from wfgen.errors import SpecError, UsageError
from wfgen.job.arguments import parse_job_argument
from wfgen.job.render import render_workflow
from wfgen.job.spec import load_spec
from wfgen.job.workdir import collect, pack_digest, prepare, write

ROOT = Path(__file__).resolve().parent.parent


def tree(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("X = 1\n")
    (root / "run.sh").write_text("echo hi\n")
    os.chmod(root / "run.sh", 0o755)
    (root / "build").mkdir()
    (root / "build" / "out.o").write_bytes(b"\0")
    (root / "notes.log").write_text("log\n")
    (root / "keep.log").write_text("kept\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref\n")
    (root / ".gitignore").write_text("*.log\n!keep.log\n")
    (root / ".wfgenignore").write_text("build/\n")
    return root


def archive(root: Path) -> bytes:
    out = io.BytesIO()
    write(root, collect(root), out)
    return out.getvalue()


def test_git_ignore_rules_and_dot_git_are_honoured(tmp_path):
    root = tree(tmp_path / "src")
    (root / "link.py").symlink_to(root / "pkg" / "mod.py")  # links are left out
    assert collect(root) == (".gitignore", ".wfgenignore", "keep.log", "pkg/mod.py", "run.sh")


def test_the_same_tree_gives_the_same_bytes_whatever_the_times(tmp_path):
    root = tree(tmp_path / "src")
    first = archive(root)
    for path in root.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    assert archive(root) == first
    copy = tree(tmp_path / "copy")  # another folder, other inode order: same bytes
    assert archive(copy) == first
    assert pack_digest(root).sha256 == pack_digest(copy).sha256
    (root / "pkg" / "mod.py").write_text("X = 2\n")
    assert pack_digest(root).sha256 != pack_digest(copy).sha256


def test_entries_are_sorted_rootless_and_keep_the_executable_bit(tmp_path):
    root = tree(tmp_path / "src")
    with tarfile.open(fileobj=io.BytesIO(archive(root)), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == list(collect(root))
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    modes = {m.name: m.mode for m in members}
    assert modes["run.sh"] == 0o755 and modes["pkg/mod.py"] == 0o644
    assert archive(root)[4:8] == b"\0\0\0\0"  # gzip header: no time


def _spec(tmp_path: Path, **fields) -> Path:
    spec = {"name": "wd", "container": {"image": "alpine", "command": ["sh", "run.sh"]},
            **fields}
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec, indent=1))
    return path


def test_validate_names_the_workdir_field(tmp_path):
    with pytest.raises(SpecError, match="no folder") as info:
        load_spec(_spec(tmp_path, workdir="./src"))
    assert info.value.location.field == "workdir" and info.value.location.line > 0
    with pytest.raises(SpecError, match="relative to the spec"):
        load_spec(_spec(tmp_path, workdir="/etc"))
    tree(tmp_path / "src")
    with pytest.raises(SpecError, match="not supported with tasks"):
        load_spec(_spec(tmp_path, workdir="./src", tasks={"count": 2}))
    with pytest.raises(SpecError, match="staging"):
        load_spec(_spec(tmp_path, workdir="./src", staging="s3://bucket/x"))


def test_the_workflow_passes_the_content_addressed_tree_to_the_vm(tmp_path):
    tree(tmp_path / "src")
    spec = load_spec(_spec(tmp_path, workdir="./src", staging="gs://stage-b/runs/"))
    packed = prepare(spec)
    assert spec.workdir_uri == f"gs://stage-b/runs/workdir-{packed.sha256}.tar.gz"
    text = render_workflow(spec)
    encoded = re.search(r'- spec_b64: "([^"]+)"', text).group(1)
    assert json.loads(base64.b64decode(encoded))["workdir"] == spec.workdir_uri
    assert '- key: "wfgen-workdir"' in text
    assert 'container.workdir: ${default(map.get(arg, "workdir"), container.workdir)}' in text


def test_without_staging_the_spec_is_refused_naming_workdir(tmp_path):
    tree(tmp_path / "src")
    spec = load_spec(_spec(tmp_path, workdir="./src"))
    with pytest.raises(SpecError, match="workdir needs a staging place"):
        render_workflow(spec)
    with pytest.raises(UsageError, match="--staging"):
        prepare(spec, "gs://")
    prepare(spec, "gs://stage-b/cli")
    assert spec.workdir_uri.startswith("gs://stage-b/cli/workdir-")


def test_the_argument_may_name_another_tree_of_one_object(tmp_path):
    tree(tmp_path / "src")
    spec = load_spec(_spec(tmp_path, workdir="./src", staging="gs://stage-b/runs"))
    good = parse_job_argument('{"workdir": "gs://stage-b/runs/workdir-abc.tar.gz"}', spec)
    assert good == {"workdir": "gs://stage-b/runs/workdir-abc.tar.gz"}
    for bad in ("gs://stage-b/runs/", "gs://stage-b/a/../b.tgz", "/local/path.tgz"):
        with pytest.raises(UsageError, match="workdir"):
            parse_job_argument(json.dumps({"workdir": bad}), spec)
    plain = load_spec(_spec(tmp_path))
    with pytest.raises(UsageError, match="the job spec has no workdir"):
        parse_job_argument('{"workdir": "gs://stage-b/x.tgz"}', plain)


def test_generate_without_staging_is_a_clear_error(tmp_path):
    tree(tmp_path / "src")
    path = _spec(tmp_path, workdir="./src")
    out = tmp_path / "wf.yaml"
    done = subprocess.run([sys.executable, "-m", "wfgen", "generate", str(path), "-o", str(out)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "workdir" in done.stderr and "staging" in done.stderr
    assert not out.exists()  # never a half-written output
