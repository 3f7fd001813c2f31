"""The real gcloud CLI against `wfgen serve`: deploy a generated job, run it
with adversarial arguments, a failing job, executions list/describe/cancel/
wait, and refused deploys. Skips only when gcloud is not installed."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from tests.server.serve_process import GCLOUD, PARENT, Serve

pytestmark = [pytest.mark.xdist_group("serve_gcloud"),
              pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")]

ECHO_ARGS = "import json, sys; print('ARGS=' + json.dumps(sys.argv[1:]))"
ADVERSARIAL = ["it's", 'say "hi"', "$(touch /tmp/wfgen-pwned)", "`id`", "a\nb\n", "",
               "Grüße ✓ 日本", "${not.an.expression}", "back\\slash", "--flag=x y"]


def job(path: Path, name: str, container: dict) -> Path:
    spec = {"name": name, "container": {"image": "alpine:3.20", **container},
            "timeout": "5m", "heartbeat": "2s", "retries": 0}
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-gcloud")
    server = Serve(tmp).start()
    yield server
    assert server.stop() == 0, server.log()


def deploy_job(serve: Serve, tmp: Path, name: str, container: dict) -> None:
    spec = job(tmp / f"{name}.job.yaml", name, container)
    out = tmp / f"{name}.workflow.yaml"
    gen = serve_cli("generate", str(spec), "-o", str(out))
    assert gen.returncode == 0, gen.stderr
    run = serve.gcloud("workflows", "deploy", name, f"--source={out}")
    assert run.returncode == 0, run.stderr
    assert "Waiting for operation" in run.stderr


def serve_cli(*args: str):
    import subprocess

    return subprocess.run([sys.executable, "-m", "wfgen", *args], capture_output=True,
                          text=True, timeout=60)


def test_deploy_and_run_a_generated_job_with_adversarial_args(serve, tmp_path):
    deploy_job(serve, tmp_path, "echo-args", {"command": [sys.executable, "-c", ECHO_ARGS]})
    described = serve.gcloud("workflows", "describe", "echo-args", "--format=json")
    assert described.returncode == 0, described.stderr
    workflow = json.loads(described.stdout)
    assert workflow["state"] == "ACTIVE" and workflow["revisionId"].startswith("000001-")
    data = json.dumps({"args": ADVERSARIAL})
    run = serve.gcloud("workflows", "run", "echo-args", f"--data={data}", "--format=json")
    assert run.returncode == 0, run.stderr
    execution = json.loads(run.stdout)
    assert execution["state"] == "SUCCEEDED", execution
    assert json.loads(execution["argument"]) == {"args": ADVERSARIAL}
    result = json.loads(execution["result"])  # a JSON string, as the service returns it
    assert result["status"] == "succeeded" and result["exit_code"] == 0
    line = next(x for x in result["output_tail"].splitlines() if x.startswith("ARGS="))
    assert json.loads(line[len("ARGS="):]) == ADVERSARIAL
    assert not Path("/tmp/wfgen-pwned").exists()


def test_empty_string_argument_arrives(serve, tmp_path):
    deploy_job(serve, tmp_path, "echo-empty", {"command": [sys.executable, "-c", ECHO_ARGS]})
    run = serve.gcloud("workflows", "run", "echo-empty", '--data={"args": [""]}',
                       "--format=json")
    execution = json.loads(run.stdout)
    assert execution["state"] == "SUCCEEDED", execution
    tail = json.loads(execution["result"])["output_tail"]
    assert 'ARGS=[""]' in tail


def test_a_job_exiting_7_fails_with_its_exit_code(serve, tmp_path):
    deploy_job(serve, tmp_path, "exit-seven", {"script": "echo bad >&2; exit 7"})
    run = serve.gcloud("workflows", "run", "exit-seven", "--format=json")
    assert run.returncode == 0, run.stderr  # gcloud's run exits 0 whatever the state
    execution = json.loads(run.stdout)
    assert execution["state"] == "FAILED", execution
    payload = json.loads(execution["error"]["payload"])
    assert payload["result"]["exit_code"] == 7 and payload["result"]["status"] == "failed"
    assert "line: " in execution["error"]["context"]
    element = execution["error"]["stackTrace"]["elements"][0]
    assert int(element["position"]["line"]) > 0 and element["routine"]


SLEEPER = """main:
  params: [args]
  steps:
    - nap:
        call: sys.sleep
        args:
          seconds: ${args.seconds}
    - done:
        return: ${"slept " + string(args.seconds)}
"""


def test_executions_list_describe_wait_cancel(serve, tmp_path):
    source = tmp_path / "sleeper.yaml"
    source.write_text(SLEEPER)
    assert serve.gcloud("workflows", "deploy", "sleeper", f"--source={source}").returncode == 0
    quick = serve.gcloud("workflows", "execute", "sleeper", '--data={"seconds": 1}',
                         "--format=value(name)")
    assert quick.returncode == 0, quick.stderr
    quick_id = quick.stdout.strip().rsplit("/", 1)[-1]
    slow = serve.gcloud("workflows", "execute", "sleeper", '--data={"seconds": 600}',
                        "--format=value(name)")
    slow_id = slow.stdout.strip().rsplit("/", 1)[-1]

    waited = serve.gcloud("workflows", "executions", "wait", quick_id, "--workflow=sleeper",
                          "--format=json")
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["result"] == '"slept 1"'

    listed = serve.gcloud("workflows", "executions", "list", "sleeper", "--format=json")
    names = [e["name"].rsplit("/", 1)[-1] for e in json.loads(listed.stdout)]
    assert names == [slow_id, quick_id]  # newest first
    table = serve.gcloud("workflows", "executions", "list", "sleeper")
    assert "ACTIVE" in table.stdout and "SUCCEEDED" in table.stdout

    cancelled = serve.gcloud("workflows", "executions", "cancel", slow_id,
                             "--workflow=sleeper", "--quiet", "--format=json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["state"] == "CANCELLED"
    described = serve.gcloud("workflows", "executions", "describe", slow_id,
                             "--workflow=sleeper", "--format=json")
    assert json.loads(described.stdout)["state"] == "CANCELLED"
    again = serve.gcloud("workflows", "executions", "cancel", slow_id, "--workflow=sleeper",
                         "--quiet")
    assert again.returncode == 1 and "FAILED_PRECONDITION" in again.stderr

    missing = serve.gcloud("workflows", "executions", "describe", "nope", "--workflow=sleeper")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr


def test_a_refused_deploy_names_line_and_column(serve, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("main:\n  steps:\n    - first:\n        next: nowhere\n")
    run = serve.gcloud("workflows", "deploy", "broken", f"--source={bad}")
    assert run.returncode == 1
    assert "[INVALID_ARGUMENT]" in run.stderr and "line 3, column" in run.stderr
    assert "nowhere" in run.stderr
    missing = serve.gcloud("workflows", "describe", "broken")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr


def test_deploy_refuses_what_googles_deploy_refuses(serve, tmp_path):
    """A variable read after the loop that created it (reference/syntax/variables):
    the operation fails naming line and column; the neighbour that declares it
    first deploys."""
    source = tmp_path / "scope.yaml"
    body = ("- loop:\n    for:\n      value: v\n      in: [1, 2]\n      steps:\n"
            "        - keep:\n            assign:\n              - last: ${v}\n"
            "- done:\n    return: ${last}\n")
    source.write_text(body)
    run = serve.gcloud("workflows", "deploy", "scoped", f"--source={source}")
    assert run.returncode == 1
    assert "[INVALID_ARGUMENT]" in run.stderr and "line 10, column 13" in run.stderr
    assert "variable 'last' exists only in the for loop" in run.stderr
    source.write_text("- init:\n    assign:\n      - last: null\n" + body)
    run = serve.gcloud("workflows", "deploy", "scoped", f"--source={source}")
    assert run.returncode == 0, run.stderr


def test_redeploy_makes_a_new_revision_and_list_and_delete(serve, tmp_path):
    source = tmp_path / "flow.yaml"
    source.write_text("- hello:\n    return: one\n")
    assert serve.gcloud("workflows", "deploy", "flow", f"--source={source}").returncode == 0
    source.write_text("- hello:\n    return: two\n")
    again = serve.gcloud("workflows", "deploy", "flow", f"--source={source}",
                         "--labels=team=ml", "--format=json")
    assert again.returncode == 0, again.stderr
    workflow = json.loads(again.stdout)
    assert workflow["revisionId"].startswith("000002-") and workflow["labels"] == {"team": "ml"}
    run = serve.gcloud("workflows", "run", "flow", "--format=value(result)")
    assert run.stdout.strip() == '"two"'
    listed = serve.gcloud("workflows", "list", "--format=value(name)")
    assert f"{PARENT}/workflows/flow" in listed.stdout.split()
    deleted = serve.gcloud("workflows", "delete", "flow", "--quiet")
    assert deleted.returncode == 0, deleted.stderr
    assert serve.gcloud("workflows", "describe", "flow").returncode == 1


def test_compute_instances_list_shows_the_running_jobs_vm(serve, tmp_path):
    deploy_job(serve, tmp_path, "vm-shown", {"script": "sleep 4; echo finished"})
    started = serve.gcloud("workflows", "execute", "vm-shown", "--format=value(name)")
    execution = started.stdout.strip()
    execution_id = execution.rsplit("/", 1)[-1]

    def labelled() -> list[dict]:
        listed = serve.gcloud("compute", "instances", "list", "--format=json")
        assert listed.returncode == 0, listed.stderr
        return [vm for vm in json.loads(listed.stdout)
                if vm.get("labels", {}).get("wfgen-execution") == execution_id]

    deadline = time.monotonic() + 60
    while not (vms := labelled()):
        assert time.monotonic() < deadline, "the job's VM never showed in the list"
    assert vms[0]["labels"]["wfgen-job"] == "vm-shown" and vms[0]["status"] == "RUNNING"
    waited = serve.gcloud("workflows", "executions", "wait", execution_id,
                          "--workflow=vm-shown", "--format=json")
    assert json.loads(waited.stdout)["state"] == "SUCCEEDED", waited.stdout
    assert labelled() == []  # the workflow deleted its VM
