"""End to end through `wfgen run --local JOB.yaml`: the generated workflow on
wfgen's engine, the real startup script under bash, local compute and callbacks.
Every test also checks that no process of a local VM survives the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.xdist_group("run_local")

ON_HOST = [sys.executable, "-m", "wfgen", "run", "--local", "--on-host"]
FAST = {"WFGEN_BACKOFF_MS": "100", "WFGEN_BACKOFF_MAX_MS": "400", "WFGEN_STOP_DEADLINE": "3"}


def job_file(tmp_path: Path, container: dict, **extra) -> Path:
    spec = {"name": "t", "container": {"image": "alpine:3.20", **container},
            "timeout": "5m", "heartbeat": "1s", "retries": 0, **extra}
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec))
    return path


def vm_processes(root: Path) -> list[str]:
    """Processes whose command line or working directory lies under root."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if str(root) in cmd or cwd.startswith(str(root)):
            found.append(f"{proc.name}: {cmd}")
    return found


def run_local(tmp_path: Path, job: Path, *args: str, timeout: float = 120
              ) -> subprocess.CompletedProcess[str]:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, **FAST, "TMPDIR": str(scratch)}
    result = subprocess.run([sys.executable, "-m", "wfgen", "run", "--local", "--on-host", str(job),
                             *args],
                            capture_output=True, text=True, timeout=timeout, env=env)
    deadline = time.monotonic() + 3
    while vm_processes(scratch) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert vm_processes(scratch) == [], result.stderr
    assert list(scratch.iterdir()) == [], "scratch directories left behind"
    return result


def result_of(run: subprocess.CompletedProcess[str]) -> dict:
    assert run.stdout.strip(), run.stderr
    return json.loads(run.stdout)


def test_success(tmp_path):
    run = run_local(tmp_path, job_file(tmp_path, {"script": "echo hello-from-the-job"}))
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert result["status"] == "succeeded" and result["exit_code"] == 0
    assert result["attempts"] == 1
    assert "hello-from-the-job" in result["output_tail"]
    assert "hello-from-the-job" in run.stderr  # the output streams too
    assert "deleted" in run.stderr


def test_failing_job_exits_with_its_code(tmp_path):
    run = run_local(tmp_path, job_file(tmp_path, {"script": "echo bad >&2; exit 7"}))
    assert run.returncode == 7, run.stderr
    result = result_of(run)
    assert result["status"] == "failed" and result["exit_code"] == 7


def test_job_killed_by_a_signal_is_137(tmp_path):
    run = run_local(tmp_path, job_file(tmp_path, {"script": "kill -9 $$"}))
    assert run.returncode == 137, run.stderr
    assert result_of(run)["exit_code"] == 137


def test_preemption_is_retried_on_a_new_vm(tmp_path):
    job = job_file(tmp_path, {"script": "sleep 4; echo done"}, retries=1)
    run = run_local(tmp_path, job, "--fault", "preempt@1s")
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert result["attempts"] == 2 and result["status"] == "succeeded"
    assert result["instance"].endswith("-2")
    assert run.stderr.count(" deleted") >= 1 and "preempted" in run.stderr


def test_preemption_without_retries_fails_as_preempted(tmp_path):
    job = job_file(tmp_path, {"script": "sleep 30"}, retries=0)
    run = run_local(tmp_path, job, "--fault", "preempt@1s")
    assert run.returncode == 125, run.stderr
    result = result_of(run)
    assert result["status"] == "preempted" and result["attempts"] == 1


def _when(stderr: str, words: str) -> float:
    """The time stamp of the first lifecycle line holding `words`."""
    line = next(x for x in stderr.splitlines() if x.startswith("wfgen [") and words in x)
    return float(line.split("[", 1)[1].split("s]", 1)[0])


def test_a_vanished_vm_is_noticed_within_a_heartbeat_and_retried(tmp_path):
    job = job_file(tmp_path, {"script": "sleep 3; echo ok"}, retries=1)
    run = run_local(tmp_path, job, "--fault", "vanish@1s")
    assert run.returncode == 0, run.stderr
    assert result_of(run)["attempts"] == 2
    noticed = _when(run.stderr, "retrying on a new VM") - _when(run.stderr, "vanished")
    assert noticed < 1.0 + 1.0 + 0.5, run.stderr  # one heartbeat, plus the 1 s grace
    assert '"status": "lost"' in run.stderr


def test_refused_callbacks_still_deliver_the_report(tmp_path):
    run = run_local(tmp_path, job_file(tmp_path, {"script": "echo fine"}),
                    "--fault", "refuse-callbacks=3")
    assert run.returncode == 0, run.stderr
    assert result_of(run)["status"] == "succeeded"


def test_failed_insert_is_a_clear_error_and_no_vm(tmp_path):
    run = run_local(tmp_path, job_file(tmp_path, {"script": "echo never"}),
                    "--fault", "insert-fail")
    assert run.returncode == 125
    assert "QUOTA_EXCEEDED" in run.stderr
    assert "never" not in run.stderr


def test_whole_job_timeout_deletes_the_vm_and_keeps_the_last_output(tmp_path):
    job = job_file(tmp_path, {"script": "echo still-working; sleep 60"}, timeout="3s")
    run = run_local(tmp_path, job)
    assert run.returncode == 125, run.stderr
    result = result_of(run)
    assert result["status"] == "timeout"
    assert "deleted" in run.stderr
    assert "still-working" in result["output_tail"]  # a live tail, not written at EOF only
    assert "exit code None" not in run.stderr


def test_without_a_container_engine_nothing_runs_unless_on_host(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 1\n")  # a client, no daemon
    (bin_dir / "docker").chmod(0o755)
    job = job_file(tmp_path, {"script": "touch ran-on-host"})
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    run = subprocess.run([sys.executable, "-m", "wfgen", "run", "--local", str(job)],
                         capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert run.returncode == 125, run.stderr
    assert "--on-host" in run.stderr and "nothing was created" in run.stderr
    assert "created" not in run.stderr.replace("nothing was created", "")
    assert not list(tmp_path.rglob("ran-on-host"))


def test_a_script_gets_its_args_as_positional_parameters_byte_for_byte(tmp_path):
    out = tmp_path / "seen.json"
    script = 'exec "$T_PY" -c "$T_DUMP" "$T_OUT" "$@"'
    job = job_file(tmp_path, {"script": script, "env": {
        "T_PY": sys.executable, "T_DUMP": DUMP, "T_OUT": str(out)}})
    run = run_local(tmp_path, job, "--data", json.dumps({"args": ADVERSARIAL}))
    assert run.returncode == 0, run.stderr
    assert json.loads(out.read_text())["argv"] == ADVERSARIAL


def test_preemption_report_carries_the_output_so_far(tmp_path):
    job = job_file(tmp_path, {"script": "echo before-preemption; sleep 30"}, retries=0)
    run = run_local(tmp_path, job, "--fault", "preempt@2s")
    assert run.returncode == 125, run.stderr
    result = result_of(run)
    assert result["status"] == "preempted" and "before-preemption" in result["output_tail"]
    assert "exit code None" not in run.stderr


DUMP = ("import json, os, sys; json.dump({'argv': sys.argv[2:], 'env': {k: v for k, v in "
        "os.environ.items() if k.startswith('T_')}}, open(sys.argv[1], 'w'))")
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=30)
ADVERSARIAL = ["quote \" ' `", "line\nbreak\n", "${HOME}", "$(touch /tmp/pwned)", "-rf",
               "unicode é 中文 😀", "   ", "", "x" * 10240, "back\\slash"]


def _roundtrip(tmp_path: Path, args: list[str], env: dict[str, str]) -> dict:
    out = tmp_path / "seen.json"
    out.unlink(missing_ok=True)
    job = job_file(tmp_path, {"command": [sys.executable, "-c", DUMP, str(out)]})
    data = json.dumps({"args": args, "env": env})
    run = run_local(tmp_path, job, "--data", data)
    assert run.returncode == 0, run.stderr
    return json.loads(out.read_text())


def test_adversarial_argv_and_env_reach_the_job_exactly(tmp_path):
    env = {f"T_{i}": v for i, v in enumerate(ADVERSARIAL)}
    seen = _roundtrip(tmp_path, ADVERSARIAL, env)
    assert seen == {"argv": ADVERSARIAL, "env": env}


@settings(max_examples=6, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(TEXT, max_size=4), st.dictionaries(st.from_regex(r"T_[A-Z0-9_]{1,5}",
                                                                 fullmatch=True), TEXT, max_size=3))
def test_property_argv_and_env_arrive_byte_for_byte(tmp_path, args, env):
    assert _roundtrip(tmp_path, args, env) == {"argv": args, "env": env}


def test_bad_data_is_a_usage_error(tmp_path):
    job = job_file(tmp_path, {"script": "true"})
    for data in ["{", "[1]", '{"args": "--lr 0.1"}', '{"nope": 1}', '{"env": {"A=B": "x"}}',
                 '{"args": ["a\\u0000b"]}', '{"command": ["x"], "script": "x"}']:
        run = run_local(tmp_path, job, "--data", data)
        assert run.returncode == 2 and "--data" in run.stderr


@pytest.mark.parametrize(("signame", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_stop_signal_stops_the_workflow_and_deletes_every_local_vm(tmp_path, signame, code):
    import signal

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # retries: the VM's "stopped" report must not start a new attempt after the stop
    job = job_file(tmp_path, {"script": "echo started; sleep 60"}, retries=2)
    proc = subprocess.Popen([*ON_HOST, str(job)],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **FAST, "TMPDIR": str(scratch)})
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "started" in line:
            break
    assert vm_processes(scratch), "the job should be running now"
    proc.send_signal(getattr(signal, signame))
    _out, rest = proc.communicate(timeout=30)
    assert proc.returncode == code, "".join(seen) + rest
    assert "deleting every local VM" in rest
    assert "attempt 2" not in rest
    assert vm_processes(scratch) == []
    assert list(scratch.iterdir()) == []


def test_stats_print_billed_steps_and_price(tmp_path):
    run = run_local(tmp_path, job_file(tmp_path, {"script": "true"}, heartbeat="4m"),
                    "--stats")
    assert run.returncode == 0
    line = next(x for x in run.stderr.splitlines() if "billed steps" in x)
    total = int(line.split("=")[1].split(";")[0])
    assert 5 <= total <= 15, line
    assert "$" in line


def test_a_zone_out_of_capacity_is_retried_after_a_pause(tmp_path):
    job = job_file(tmp_path, {"script": "echo finally"}, retries=1)
    run = run_local(tmp_path, job, "--fault",
                    "insert-fail=ZONE_RESOURCE_POOL_EXHAUSTED: the zone does not have enough "
                    "resources available")
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert result["attempts"] == 2 and result["status"] == "succeeded"
    assert '"status": "unavailable"' in run.stderr


def test_a_vm_that_cannot_report_powers_off_and_the_attempt_is_lost(tmp_path, monkeypatch):
    monkeypatch.setenv("WFGEN_REPORT_DEADLINE", "1")
    job = job_file(tmp_path, {"script": "echo unheard"}, retries=0)
    run = run_local(tmp_path, job, "--fault", "refuse-callbacks=1000")
    assert run.returncode == 125, run.stderr
    result = result_of(run)
    assert result["status"] == "lost"
    assert "STOPPING" in result["message"] or "TERMINATED" in result["message"]
    assert "powered itself off" in run.stderr


def test_the_init_job_runs_as_written(tmp_path):
    from wfgen.job.starter import starter_job

    job = tmp_path / "job.yaml"
    job.write_text(starter_job("starter").replace("timeout: 7d", "timeout: 1h"))
    run = run_local(tmp_path, job)
    assert run.returncode == 0, run.stderr
    assert "hello from wfgen" in result_of(run)["output_tail"]


def test_a_missing_program_says_so_and_exits_127(tmp_path):
    job = job_file(tmp_path, {"command": ["no-such-program-here"]})
    run = run_local(tmp_path, job)
    assert run.returncode == 127, run.stderr
    assert "executable file not found" in result_of(run)["output_tail"]


def test_when_wfgen_is_killed_its_vm_goes_too(tmp_path):
    import signal

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    job = job_file(tmp_path, {"script": "echo started; sleep 60"})
    proc = subprocess.Popen([*ON_HOST, str(job)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, **FAST, "TMPDIR": str(scratch)})
    assert proc.stderr is not None
    for line in proc.stderr:
        if "started" in line:
            break
    assert vm_processes(scratch)
    proc.send_signal(signal.SIGKILL)  # no cleanup code of wfgen's can run
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while (vm_processes(scratch) or list(scratch.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert vm_processes(scratch) == []
    assert list(scratch.iterdir()) == []


def test_a_closed_stderr_does_not_stop_the_run(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    job = job_file(tmp_path, {"script": "for i in $(seq 20000); do echo line $i; done"})
    proc = subprocess.Popen([*ON_HOST, str(job)],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **FAST, "TMPDIR": str(scratch)})
    assert proc.stderr is not None
    proc.stderr.close()  # like `2>&1 | head -1`
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert json.loads(out)["status"] == "succeeded"


def test_refused_callbacks_are_a_fault_of_the_first_attempt_only(tmp_path):
    job = job_file(tmp_path, {"script": "sleep 3; echo ok"}, retries=1)
    run = run_local(tmp_path, job, "--fault", "preempt@1s", "--fault", "refuse-callbacks=1000",
                    timeout=60)
    assert run.returncode == 0, run.stderr
    assert result_of(run)["attempts"] == 2


def _billed(stderr: str) -> int:
    line = next(x for x in stderr.splitlines() if "billed steps:" in x)
    return int(line.split("=", 1)[1].split(";", 1)[0])


def test_billed_steps_success_path_11_and_3_per_heartbeat(tmp_path):
    """The template's subworkflows cost nothing extra: 11 steps on the success path
    (the argument checked, a CloudEvent looked for and the container resolved in one
    switch, run_job, delete_vm, job_result), 3 per beat."""
    quick = run_local(tmp_path, job_file(tmp_path, {"script": "true"}, heartbeat="1m"),
                      "--stats", "--data", '{"args": ["x"], "env": {"A": "1"}}')
    assert quick.returncode == 0, quick.stderr
    assert _billed(quick.stderr) == 11, quick.stderr
    slow = run_local(tmp_path, job_file(tmp_path, {"script": "sleep 3"}), "--stats")
    assert slow.returncode == 0, slow.stderr
    extra = _billed(slow.stderr) - 11
    assert extra > 0 and extra % 3 == 0, slow.stderr
