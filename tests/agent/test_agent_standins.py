"""The stand-ins on their own: what the local runtime relies on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.agent.agentbed import STANDINS, gone, wait_for_file


def run(tool: str, *args: str, env: dict[str, str] | None = None,
        stdin: str = "") -> subprocess.CompletedProcess[str]:
    base = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/tmp"}
    return subprocess.run([sys.executable, str(STANDINS / tool), *args],
                          env={**base, **(env or {})}, input=stdin, capture_output=True,
                          text=True, timeout=10)


def test_docker_run_env_entrypoint_and_status() -> None:
    r = run("docker", "run", "--rm", "--network=host", "--env=A=x=y", "-e", "B=", "--env", "C",
            "--entrypoint=sh", "img", "-c", 'printf "%s|%s|%s|%s" "$A" "$B" "$C" "$1"; exit 9',
            "--not-a-flag", env={"C": "from-caller"})
    assert r.returncode == 9
    assert r.stdout == "x=y||from-caller|"  # $0 is --not-a-flag; argv untouched


def test_docker_run_passes_only_given_env() -> None:
    r = run("docker", "run", "--env=ONLY=1", "img", "env", env={"SECRET": "s"})
    names = {line.split("=", 1)[0] for line in r.stdout.splitlines()}
    assert names == {"PATH", "HOME", "ONLY"}
    r = run("docker", "run", "img", "env", env={"SECRET": "s", "WFGEN_STANDIN_INHERIT_ENV": "1"})
    assert "SECRET=s" in r.stdout


def test_docker_run_refuses_unknown_flags_and_missing_command() -> None:
    assert run("docker", "run", "--bogus", "img", "true").returncode == 125
    assert run("docker", "run", "img").returncode == 125
    assert run("docker", "run", "img", "/nonexistent/cmd").returncode == 127


def test_docker_run_forwards_sigterm(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    proc = subprocess.Popen([sys.executable, str(STANDINS / "docker"), "run", "img", "sh", "-c",
                             f"echo $$ > {pidfile}; exec sleep 20"], env={"PATH": "/usr/bin:/bin"})
    wait_for_file(pidfile)  # the job runs, so the stand-in's handlers are in place
    proc.terminate()
    assert proc.wait(5) == 128 + 15


def test_record_fail_and_slow_knobs(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    env = {"WFGEN_STANDIN_RECORD": str(rec), "WFGEN_STANDIN_FAIL": "docker:pull cos-extensions=3",
           "WFGEN_STANDIN_SLOW": "toolbox:apt-get=0.4"}
    assert run("docker", "pull", "img", env=env).returncode == 1
    assert run("docker", "version", env=env).returncode == 0
    assert run("cos-extensions", "install", "gpu", env=env).returncode == 3
    t0 = time.monotonic()
    assert run("toolbox", "apt-get", "install", "-y", "jq", env=env).returncode == 0
    assert time.monotonic() - t0 >= 0.4
    r = run("toolbox", "jq", "-r", ".a", env=env, stdin='{"a": "from jq"}')
    assert (r.returncode, r.stdout) == (0, "from jq\n")  # toolbox CMD runs CMD
    rows = [json.loads(line) for line in rec.read_text().splitlines()]
    assert [(row["tool"], row["argv"][0]) for row in rows] == [
        ("docker", "pull"), ("docker", "version"), ("cos-extensions", "install"),
        ("toolbox", "apt-get"), ("toolbox", "jq")]


def test_docker_run_spares_the_callers_output_reader(tmp_path: Path) -> None:
    """bash starts `>(tee ...)` as a child of what becomes docker: killing the
    job's leftovers must not kill that reader (the output would be lost)."""
    out = tmp_path / "out"
    script = f'"$0" run img sh -c "echo hi" > >(sleep 0.5; cat > {out}); wait; sleep 1'
    r = subprocess.run(["bash", "-c", script, str(STANDINS / "docker")],
                       env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}, timeout=10)
    assert r.returncode == 0
    assert out.read_text() == "hi\n"


def test_docker_run_kills_the_jobs_leftovers(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    r = run("docker", "run", "img", "sh", "-c", f"sleep 30 & echo $! > {pidfile}")
    assert r.returncode == 0
    assert gone(pidfile.read_text())


def test_docker_cidfile_kill_and_wait(tmp_path: Path) -> None:
    """What the agent's stop grace uses: the id in --cidfile, `kill --signal=TERM`
    to the job's main process, `wait` until it is gone (its status), `kill`."""
    cidfile, pidfile = tmp_path / "cid", tmp_path / "pid"
    env = {"TMPDIR": str(tmp_path)}
    base = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/tmp", **env}
    job = subprocess.Popen(
        [sys.executable, str(STANDINS / "docker"), "run", "--rm", f"--cidfile={cidfile}", "img",
         "sh", "-c", f"trap 'echo got TERM; exit 3' TERM; echo $$ > {pidfile}; "
                     "while :; do sleep 0.05; done"],
        env=base, stdout=subprocess.PIPE, text=True)
    cid = wait_for_file(cidfile)
    job_pid = int(wait_for_file(pidfile))
    assert len(cid) == 64 and int(cid, 16)
    again = run("docker", "run", f"--cidfile={cidfile}", "img", "true", env=env)
    assert again.returncode == 125 and "Container ID file found" in again.stderr
    assert run("docker", "kill", "--signal=TERM", cid, env=env).stdout.strip() == cid
    waited = run("docker", "wait", cid, env=env)
    assert (waited.returncode, waited.stdout.strip()) == (0, "3")
    assert job.wait(5) == 3 and "got TERM" in job.stdout.read()
    assert gone(job_pid)
    missing = run("docker", "kill", cid, env=env)
    assert missing.returncode == 1 and "No such container" in missing.stderr
    assert run("docker", "kill", "--signal=NOPE", cid, env=env).returncode == 1

    stubborn = subprocess.Popen(
        [sys.executable, str(STANDINS / "docker"), "run", f"--cidfile={tmp_path / 'cid2'}",
         "img", "sh", "-c", f"trap '' TERM; echo $$ > {tmp_path / 'pid2'}; sleep 30"], env=base)
    cid2 = wait_for_file(tmp_path / "cid2")
    wait_for_file(tmp_path / "pid2")
    run("docker", "kill", "-s", "TERM", cid2, env=env)
    time.sleep(0.3)
    assert stubborn.poll() is None  # TERM ignored
    assert run("docker", "kill", cid2, env=env).returncode == 0  # KILL by default
    assert stubborn.wait(5) == 137
    assert run("docker", "wait", cid2, env=env).stdout.strip() == "137"
