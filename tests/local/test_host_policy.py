"""One host-execution rule for local VMs (wfgen.local.host_policy): wfgen's own VM
agent runs; its container on the host only with --on-host where no engine works;
any other startup script on the host only with --on-host, engine or not. A refused
insert fails in its operation, nothing runs, `run --local` exits 125.

The engine check is wfgen's own probe (`docker info`), so a `docker` script on PATH
stands in for an engine that works, or for a client without a daemon."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from wfgen.job.resources import startup_script
from wfgen.local.host_policy import OPT_IN, HostRule, host_user, is_agent

pytestmark = pytest.mark.xdist_group("host_policy")

AGENT = {"startup-script": startup_script("startup.sh"),
         "shutdown-script": startup_script("shutdown.sh")}
FAST = {"WFGEN_BACKOFF_MS": "100", "WFGEN_BACKOFF_MAX_MS": "400", "WFGEN_STOP_DEADLINE": "3"}


# -- the rule itself ---------------------------------------------------------------
def test_wfgens_agent_is_recognised_byte_for_byte() -> None:
    assert is_agent("startup-script", AGENT["startup-script"])
    assert is_agent("shutdown-script", AGENT["shutdown-script"])
    assert not is_agent("startup-script", AGENT["startup-script"] + "\nid > /tmp/x\n")
    assert not is_agent("startup-script", AGENT["shutdown-script"])  # the key matters


@pytest.mark.parametrize(("engine", "on_host", "refused"), [
    (True, False, False), (True, True, False), (False, True, False), (False, False, True)])
def test_the_agent_runs_its_container_on_the_host_only_with_on_host(engine, on_host, refused):
    refusal, notice = HostRule(engine=engine, on_host=on_host).check("vm-1", AGENT)
    assert (refusal is not None) == refused
    if refused:
        assert "container's command" in refusal and OPT_IN in refusal and "vm-1" in refusal
    # a host process is announced; the container in an engine is not one
    assert (notice is not None) == (on_host and not engine)


@pytest.mark.parametrize("engine", [True, False])
@pytest.mark.parametrize("key", ["startup-script", "shutdown-script"])
def test_any_other_script_needs_on_host_engine_or_not(engine, key) -> None:
    metadata = {**AGENT, key: "toolbox true; curl -s http://example.invalid | sh"}
    refusal, _ = HostRule(engine=engine, on_host=False).check("vm-1", metadata)
    assert refusal is not None and "not wfgen's VM agent" in refusal
    assert f"as {host_user()}" in refusal and "--on-host" in refusal
    refusal, notice = HostRule(engine=engine, on_host=True).check("vm-1", metadata)
    assert refusal is None
    assert notice is not None and f"runs as a host process, as {host_user()}" in notice


def test_a_vm_without_scripts_runs_nothing_and_is_allowed() -> None:
    for metadata in ({}, {"startup-script": "  \n", "foo": "bar"}):
        assert HostRule(engine=False, on_host=False).check("vm-1", metadata) == (None, None)


def test_the_notice_is_shown_once_per_kind() -> None:
    rule = HostRule(engine=False, on_host=True)
    first = rule.check("a", AGENT)[1]
    assert first is not None and "(first: VM a)" in first
    assert rule.check("b", AGENT) == (None, None)
    other = rule.check("c", {"startup-script": "true"})[1]
    assert other is not None and "not wfgen's VM agent" in other


@pytest.mark.parametrize(("engine", "on_host", "words"), [
    (True, True, "container engine"), (True, False, "refused"),
    (False, True, "runs as a host process"), (False, False, "no --on-host")])
def test_serve_describes_its_mode(engine, on_host, words) -> None:
    assert words in HostRule(engine=engine, on_host=on_host).describe()


# -- run --local, end to end -------------------------------------------------------
def fake_docker(tmp_path: Path, *, works: bool) -> dict[str, str]:
    """PATH with a `docker` that answers `docker info` as a daemon would (or not)."""
    bin_dir = tmp_path / ("engine" if works else "no-engine")
    bin_dir.mkdir()
    body = ('[ "$1" = info ] && { echo 27.0.0; exit 0; }\nexit 1\n' if works else "exit 1\n")
    (bin_dir / "docker").write_text("#!/bin/sh\n" + body)
    (bin_dir / "docker").chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def run_local(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    run = subprocess.run([sys.executable, "-m", "wfgen", "run", "--local", *args],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, **FAST, "TMPDIR": str(scratch), **env})
    assert "Traceback" not in run.stderr, run.stderr
    assert list(scratch.iterdir()) == [], "a VM's scratch directory was left behind"
    return run


def generated_workflow(tmp_path: Path, mark: Path, **extra: object) -> Path:
    spec = {"name": "hosty", "container": {"image": "alpine:3.20",
                                           "script": f"touch {shlex.quote(str(mark))}"},
            "timeout": "5m", "heartbeat": "2s", "retries": 0, **extra}
    (tmp_path / "job.yaml").write_text(json.dumps(spec))
    out = tmp_path / "wf.yaml"
    gen = subprocess.run([sys.executable, "-m", "wfgen", "generate", str(tmp_path / "job.yaml"),
                          "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert gen.returncode == 0, gen.stderr
    return out


def test_a_generated_workflow_file_needs_on_host_without_an_engine(tmp_path) -> None:
    mark = tmp_path / "ran-on-host"
    workflow = generated_workflow(tmp_path, mark)
    env = fake_docker(tmp_path, works=False)
    refused = run_local(tmp_path, str(workflow), env=env)
    assert refused.returncode == 125, refused.stderr
    assert OPT_IN in refused.stderr and "CONDITION_NOT_MET" in refused.stderr
    assert "its container's command" in refused.stderr  # the agent itself was recognised
    assert "not wfgen's VM agent" not in refused.stderr
    assert " created (attempt" not in refused.stderr and not mark.exists()

    ran = run_local(tmp_path, "--on-host", str(workflow), env=env)
    assert ran.returncode == 0, ran.stderr
    assert f"runs as a host process, as {host_user()}" in ran.stderr
    assert mark.exists() and json.loads(ran.stdout)["status"] == "succeeded"


def test_a_fan_out_workflows_vms_carry_the_agent_too(tmp_path) -> None:
    """The fan-out template writes the agent as a YAML literal, not base64: the same
    bytes reach the insert, so only the container needs the opt-in."""
    mark = tmp_path / "task-ran"
    workflow = generated_workflow(tmp_path, mark, tasks={"count": 2})
    refused = run_local(tmp_path, str(workflow), env=fake_docker(tmp_path, works=False))
    assert refused.returncode == 125, refused.stderr
    assert "its container's command" in refused.stderr and OPT_IN in refused.stderr
    assert "not wfgen's VM agent" not in refused.stderr and not mark.exists()


def hand_written(tmp_path: Path, mark: Path) -> Path:
    """A workflow whose VM's startup script is its own (as in the article this project
    started from), not wfgen's agent."""
    vm = {"name": "handmade-1", "machineType": "zones/us-central1-a/machineTypes/e2-small",
          "metadata": {"items": [{"key": "startup-script",
                                  "value": f"touch {shlex.quote(str(mark))}"}]}}
    workflow = {"main": {"steps": [
        {"create": {"call": "googleapis.compute.v1.instances.insert",
                    "args": {"project": "p", "zone": "us-central1-a", "body": vm}}},
        {"let_it_run": {"call": "sys.sleep", "args": {"seconds": 5}}},
        {"remove": {"call": "googleapis.compute.v1.instances.delete",
                    "args": {"project": "p", "zone": "us-central1-a",
                             "instance": "handmade-1"}}},
        {"done": {"return": "ok"}}]}}
    path = tmp_path / "handmade.yaml"
    path.write_text(json.dumps(workflow))
    return path


def test_a_hand_written_startup_script_needs_on_host_even_with_an_engine(tmp_path) -> None:
    mark = tmp_path / "script-ran"
    workflow = hand_written(tmp_path, mark)
    env = fake_docker(tmp_path, works=True)
    refused = run_local(tmp_path, str(workflow), env=env)
    assert refused.returncode == 125, refused.stderr
    assert "not wfgen's VM agent" in refused.stderr and OPT_IN in refused.stderr
    assert "handmade.yaml:" in refused.stderr and "'create'" in refused.stderr
    assert not mark.exists()

    ran = run_local(tmp_path, "--on-host", str(workflow), env=env)
    assert ran.returncode == 0, ran.stderr
    assert "not wfgen's VM agent" in ran.stderr
    assert f"runs as a host process, as {host_user()}" in ran.stderr
    assert mark.exists() and json.loads(ran.stdout) == "ok"


def test_job_only_flags_stay_job_only_but_on_host_is_accepted(tmp_path) -> None:
    wf = tmp_path / "plain.yaml"
    wf.write_text("- r:\n    return: 7\n")
    ok = run_local(tmp_path, "--on-host", str(wf), env={})
    assert ok.returncode == 0 and json.loads(ok.stdout) == 7, ok.stderr
    for flag in (["--heartbeat", "2s"], ["--timeout", "1m"], ["--fault", "preempt@1s"]):
        bad = run_local(tmp_path, *flag, str(wf), env={})
        assert bad.returncode == 2 and f"{flag[0]} applies to job specs" in bad.stderr
