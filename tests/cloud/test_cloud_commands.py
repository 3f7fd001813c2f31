"""The cloud commands (deploy, run, status, logs, list, cancel, gc) driven as a
user would, against one real `wfgen serve` for the module: the real Google
clients over REST and gRPC, WORKFLOWS_EMULATOR_HOST as the only setting."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.cloud.serve_cli import GCLOUD, PROJECT, Serve, clean_env, job

pytestmark = pytest.mark.xdist_group("cloud_commands")
WORKFLOWS = f"projects/{PROJECT}/locations/us-central1/workflows"
LONG = ('echo "long job started"; i=0; '
        'while [ $i -lt 600 ]; do echo "tick $i"; i=$((i+1)); sleep 1; done')


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("cloud-serve")).start()
    yield server
    assert server.stop() == 0, "\n".join(server.lines[-40:])
    # every request the cloud commands sent passed the Discovery check, every answer fit it
    assert not [line for line in server.lines if "Google's description" in line
                or "internal error" in line]


@pytest.fixture(scope="module")
def executions():
    """Every execution the module's tests started (for the `list` test)."""
    return []


def detach(serve: Serve, spec: str, executions: list[str]) -> str:
    done = serve.wfgen("run", spec, "--detach")
    assert done.returncode == 0, done.stderr
    name = done.stdout.strip()
    assert re.fullmatch(rf"{WORKFLOWS}/[a-z0-9-]+/executions/[0-9a-f-]{{36}}", name), done.stdout
    executions.append(name)
    return name


def running_vm(serve: Serve, name: str) -> dict:
    execution_id = name.rsplit("/", 1)[-1]
    return serve.wait_for(lambda: next((vm for vm in serve.vms(execution_id)
                                        if vm["status"] == "RUNNING"), None),
                          f"a RUNNING VM of {execution_id}")


def status_of(serve: Serve, name: str) -> dict[str, str]:
    done = serve.wfgen("status", name)
    rows = dict(line.split(None, 1) for line in done.stdout.splitlines()
                if " " in line and not line.startswith(("exit code",)))
    # the exit status follows run's rule: 0 while ACTIVE or once SUCCEEDED, else 125
    # (these jobs never fail with an exit code of their own)
    assert done.returncode == (0 if rows["state"] in ("ACTIVE", "SUCCEEDED") else 125), (
        done.stdout, done.stderr)
    return rows


def test_deploy_new_unchanged_changed(serve, tmp_path):
    spec = job(tmp_path / "job.yaml", "deploy-me", "echo one")
    first = serve.wfgen("deploy", spec)
    assert first.returncode == 0, first.stderr
    revision = first.stdout.strip()
    assert re.fullmatch(r"\d{6}-[0-9a-f]{3}", revision), first.stdout
    assert f"deployed {WORKFLOWS}/deploy-me: revision {revision}" in first.stderr
    assert "gcloud workflows deploy deploy-me --source=workflow.yaml --location=us-central1" \
        in first.stderr

    again = serve.wfgen("deploy", spec)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == revision
    assert "unchanged" in again.stderr and "deployed" not in again.stderr

    job(tmp_path / "job.yaml", "deploy-me", "echo two")
    changed = serve.wfgen("deploy", spec)
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.strip() != revision
    assert changed.stdout.strip().startswith("000002-")
    source = serve.rest("GET", f"/v1/{WORKFLOWS}/deploy-me")["sourceContents"]
    assert "echo two" in json.dumps(source) or "ZWNobyB0d28" in source  # plain or base64


def test_deploy_refuses_a_bad_file_with_its_line(serve, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ncontainer:\n  image: alpine\n  nonsense: 1\n")
    done = serve.wfgen("deploy", str(bad))
    assert done.returncode == 2
    assert f"{bad}:4" in done.stderr


def test_run_follows_live_output_and_prints_the_result(serve, tmp_path, executions):
    spec = job(tmp_path / "live.yaml", "live",
               'echo "first line"; sleep 3; echo "last line"')
    proc = serve.popen("run", spec)
    assert proc.stderr is not None
    seen: list[str] = []
    live = False
    for line in proc.stderr:
        seen.append(line)
        if "| first line" in line:
            live = proc.poll() is None and not any("last line" in s for s in seen)
            break
    rest_err = proc.stderr.read()
    out = proc.stdout.read() if proc.stdout else ""
    code = proc.wait(120)
    stderr = "".join(seen) + rest_err
    assert "Traceback" not in stderr
    assert live, f"the job's first line was not shown while it ran:\n{stderr}"
    assert code == 0, stderr
    executions.append(re.search(r"\((projects/\S+)\)", stderr).group(1))
    assert re.search(r"VM live-[0-9a-f]{12}-1 created \(attempt 1\)", stderr), stderr
    assert re.search(r"VM live-[0-9a-f]{12}-1 deleted", stderr), stderr
    assert "execution succeeded" in stderr
    result = json.loads(out)
    assert result["status"] == "succeeded" and result["exit_code"] == 0
    assert "last line" in result["output_tail"]


def test_a_job_exiting_7_makes_run_exit_7(serve, tmp_path, executions):
    spec = job(tmp_path / "seven.yaml", "seven", 'echo "about to fail"; exit 7')
    done = serve.wfgen("run", spec)
    assert done.returncode == 7, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "failed" and result["exit_code"] == 7
    assert "execution FAILED: the job ended with status failed" in done.stderr
    executions.append(re.search(r"\((projects/\S+)\)", done.stderr).group(1))
    listed = serve.wfgen("list", "seven")
    assert re.search(r"\bFAILED\b.*\s7$", listed.stdout, re.M), listed.stdout


def test_run_a_fan_out_job_with_items_from_data(serve, tmp_path, executions):
    """`run --data '{"items": [...]}'` replaces a fan-out job's items on the cloud
    path too (the job model's one rule), and each task sees its own item."""
    spec = job(tmp_path / "fan.yaml", "fan", 'echo "item=$WFGEN_TASK_ITEM"',
               tasks={"items": ["x"], "parallelism": 2})
    done = serve.wfgen("run", spec, "--data", json.dumps({"items": ["a b", "$(c)"]}))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded" and result["succeeded"] == 2
    assert [t["index"] for t in result["tasks"]] == [0, 1]
    # quick tasks come and go between polls: their output comes from Cloud Logging
    assert "item=a b" in done.stderr and "item=$(c)" in done.stderr
    assert "2 task(s) succeeded, 0 failed" in done.stderr
    executions.append(re.search(r"\((projects/\S+)\)", done.stderr).group(1))
    bad = serve.wfgen("run", spec, "--data", '{"items": []}')
    assert bad.returncode == 2 and "items" in bad.stderr and "Traceback" not in bad.stderr


def test_detach_then_status_and_logs_while_it_runs_and_after(serve, tmp_path, executions):
    spec = job(tmp_path / "ticker.yaml", "ticker",
               'echo "ticker up"; for i in 1 2 3 4 5 6; do echo "tick $i"; sleep 1; done')
    name = detach(serve, spec, executions)
    vm = running_vm(serve, name)

    status = status_of(serve, name)
    assert status["state"] == "ACTIVE"
    assert status["vm"].startswith(f"{vm['name']} (us-central1-a) RUNNING")
    assert status["attempt"] == "1"
    assert status["step"] in ("wait_for_report (run_job)", "check_vm (run_job)")  # not "start"

    logs = serve.wait_for(lambda: (lambda d: d.stdout if "tick 1" in d.stdout else None)(
        serve.wfgen("logs", name)), "tick 1 in wfgen logs")
    assert "ticker up" in logs

    # by id, with the job spec naming the workflow; --follow returns when it ends
    followed = serve.wfgen("logs", name.rsplit("/", 1)[-1], "--workflow", spec, "--follow")
    assert followed.returncode == 0, followed.stderr
    assert "tick 6" in followed.stdout
    serve.wait_for(lambda: not serve.vms(name.rsplit("/", 1)[-1]), "the VM to be deleted")

    after = serve.wfgen("logs", name)  # the VM is gone: Cloud Logging entries
    assert after.returncode == 0, after.stderr
    lines = after.stdout.splitlines()
    assert "ticker up" in lines and "tick 6" in lines
    assert lines.index("tick 1") < lines.index("tick 6")
    final = status_of(serve, name)
    assert final["state"] == "SUCCEEDED" and "vm" not in final
    assert json.loads(final["result"])["exit_code"] == 0


def test_cancel_leaves_no_vm(serve, tmp_path, executions):
    name = detach(serve, job(tmp_path / "cancel.yaml", "to-cancel", LONG), executions)
    running_vm(serve, name)
    done = serve.wfgen("cancel", name)
    assert done.returncode == 0, done.stderr
    assert "deleted to-cancel-" in done.stderr
    assert serve.vms(name.rsplit("/", 1)[-1]) == []  # gone before cancel returned
    assert status_of(serve, name)["state"] == "CANCELLED"
    again = serve.wfgen("cancel", name)
    assert again.returncode == 0 and "not running: it is CANCELLED" in again.stderr


@pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")
def test_gc_finds_and_deletes_a_vm_left_by_a_gcloud_cancel(serve, tmp_path, executions):
    name = detach(serve, job(tmp_path / "orphan.yaml", "orphan", LONG), executions)
    vm = running_vm(serve, name)
    execution_id = name.rsplit("/", 1)[-1]
    cancelled = serve.gcloud("workflows", "executions", "cancel", execution_id,
                             "--workflow=orphan", "--location=us-central1")
    assert cancelled.returncode == 0, cancelled.stderr
    time.sleep(1)
    assert serve.vms(execution_id), "the VM should outlive an execution cancelled with gcloud"

    listed = serve.wfgen("gc")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(vm["name"]))
    assert "its execution is CANCELLED" in row and execution_id in row
    assert "wfgen gc --delete" in listed.stderr
    assert serve.vms(execution_id), "gc without --delete deletes nothing"

    deleted = serve.wfgen("gc", "--delete")
    assert deleted.returncode == 0, deleted.stderr
    assert vm["name"] in deleted.stderr
    assert serve.vms(execution_id) == []
    assert "no VM left behind" in serve.wfgen("gc").stderr


def test_ctrl_c_during_run_cancels_and_cleans_up(serve, tmp_path, executions):
    proc = serve.popen("run", job(tmp_path / "interrupt.yaml", "interrupt", LONG))
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "| long job started" in line:
            break
    name = re.search(r"\((projects/\S+)\)", "".join(seen)).group(1)
    executions.append(name)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    code = proc.wait(120)
    stderr = "".join(seen) + rest
    assert "Traceback" not in stderr
    assert code == 128 + signal.SIGINT, stderr
    assert "cancelling" in stderr and "deleted interrupt-" in stderr
    assert serve.vms(name.rsplit("/", 1)[-1]) == []
    assert status_of(serve, name)["state"] == "CANCELLED"
    assert proc.stdout is not None  # the result on stdout, as run --local prints it
    assert json.loads(proc.stdout.read())["status"] == "cancelled"


def test_list_shows_every_execution(serve, tmp_path, executions):
    spec = job(tmp_path / "listed.yaml", "listed", "echo listed")
    for _ in range(2):
        detach(serve, spec, executions)
    # every execution serve holds, of every workflow (other tests' too)
    known = {ex["name"].rsplit("/", 1)[-1]
             for wf in serve.rest("GET", f"/v1/{WORKFLOWS}").get("workflows", [])
             for ex in serve.rest("GET", f"/v1/{wf['name']}/executions").get("executions", [])}
    done = serve.wfgen("list", "--limit", "100")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["ID", "WORKFLOW", "STATE", "START", "DURATION", "EXIT"]
    ids = {row.split()[0] for row in rows}
    assert ids == known and {n.rsplit("/", 1)[-1] for n in executions} <= ids
    starts = [row.split()[3] for row in rows]
    assert starts == sorted(starts, reverse=True)
    one = serve.wfgen("list", spec)
    assert {row.split()[1] for row in one.stdout.splitlines()[1:]} == {"listed"}


def test_mistakes_are_one_line_and_exit_2(serve):
    by_id = serve.wfgen("status", "0d9fe4ce-dff6-4171-b45e-5e3f78a54cdd")
    assert by_id.returncode == 2 and "--workflow" in by_id.stderr
    missing = serve.wfgen("status", f"{WORKFLOWS}/nope/executions/x")
    assert missing.returncode == 2 and "not found" in missing.stderr
    no_workflow = serve.wfgen("run", "no-such-workflow")
    assert no_workflow.returncode == 2 and "not found" in no_workflow.stderr
    local_only = serve.wfgen("run", "some-name", "--fault", "preempt@1s")
    assert local_only.returncode == 2 and "--local" in local_only.stderr
    bad_data = serve.wfgen("run", "some-name", "--data", "{nope")
    assert bad_data.returncode == 2 and "--data" in bad_data.stderr
    for done in (by_id, missing, no_workflow, local_only, bad_data):
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_serve_not_running_is_one_sentence(serve):
    closed = serve.env(WORKFLOWS_EMULATOR_HOST="127.0.0.1:9")
    done = serve.wfgen("list", "anything", env=closed, timeout=120)
    assert done.returncode == 125, done.stderr
    assert "cannot reach wfgen serve at 127.0.0.1:9" in done.stderr


def test_no_credentials_says_how_to_log_in(tmp_path):
    # google-auth would probe the metadata server (a link-local address): point it at a
    # closed loopback port, and tell it not to look for GCE at all.
    env = clean_env(HOME=str(tmp_path), CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
                    GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9",
                    NO_GCE_CHECK="True")
    done = subprocess.run([sys.executable, "-m", "wfgen", "status",
                           f"{WORKFLOWS}/w/executions/x"], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "gcloud auth application-default login" in lines[0]
