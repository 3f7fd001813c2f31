"""Preemption end to end on the local runtime (`wfgen run --local --fault
preempt@...`): the container gets SIGTERM and its stop grace to save a
checkpoint, and the retry on a new VM sees the same run identity with the next
attempt number, so it resumes instead of starting over."""

from __future__ import annotations

import json
import re

import pytest

from tests.local.test_run_local import job_file, result_of, run_local

pytestmark = pytest.mark.xdist_group("run_local")

# Resume from the checkpoint if there is one; else work, and on SIGTERM save it.
CHECKPOINTING = r"""
if [ -f "$CKPT" ]; then
  echo "resumed from $(cat "$CKPT") attempt=$WFGEN_ATTEMPT id=$WFGEN_EXECUTION_ID"; exit 0
fi
save() { echo "step=$i" > "$CKPT"; echo "saved attempt=$WFGEN_ATTEMPT id=$WFGEN_EXECUTION_ID"; }
trap 'save; exit 0' TERM
echo "working attempt=$WFGEN_ATTEMPT restarts=$WFGEN_RESTARTS"
i=0; while :; do i=$((i + 1)); sleep 0.1; done
"""


def test_a_preempted_job_checkpoints_and_the_retry_resumes(tmp_path):
    ckpt = tmp_path / "ckpt.txt"
    job = job_file(tmp_path, {"script": CHECKPOINTING, "env": {"CKPT": str(ckpt)}},
                   retries=1)
    run = run_local(tmp_path, job, "--fault", "preempt@2s")
    assert run.returncode == 0, run.stderr
    execution_id = re.search(r"\(execution ([0-9a-f-]{36})\)", run.stderr).group(1)
    result = result_of(run)
    assert (result["status"], result["attempts"]) == ("succeeded", 2)
    step = ckpt.read_text().strip()
    assert re.fullmatch(r"step=\d+", step)
    assert result["output_tail"] == f"resumed from {step} attempt=2 id={execution_id}\n"
    # the first attempt: SIGTERM, its checkpoint within the grace, then the preemption
    assert "working attempt=1 restarts=0" in run.stderr
    assert f"saved attempt=1 id={execution_id}" in run.stderr
    assert "report received from t-" in run.stderr and "status preempted" in run.stderr
    assert "within the grace: true" in run.stderr


def test_every_attempt_of_a_plain_job_gets_the_execution_id(tmp_path):
    job = job_file(tmp_path, {"script": 'echo "$WFGEN_EXECUTION_ID $WFGEN_ATTEMPT '
                                        '${WFGEN_CHECKPOINT_DIR-none}"'})
    run = run_local(tmp_path, job)
    assert run.returncode == 0, run.stderr
    execution_id = re.search(r"\(execution ([0-9a-f-]{36})\)", run.stderr).group(1)
    assert json.loads(run.stdout)["output_tail"] == f"{execution_id} 1 none\n"


def test_a_job_that_ignores_sigterm_is_killed_after_its_grace(tmp_path):
    job = job_file(tmp_path, {"script": "trap 'echo ignoring TERM' TERM; echo started; "
                                        "while :; do sleep 0.1; done"},
                   retries=0, stop_grace="2s")
    run = run_local(tmp_path, job, "--fault", "preempt@2s")
    assert run.returncode == 125, run.stderr
    result = result_of(run)
    assert result["status"] == "preempted"
    assert result["message"] == ("VM preempted; the container did not exit within its 2s "
                                 "grace after SIGTERM: killed")
    assert "ignoring TERM" in result["output_tail"]
    assert "did not exit within 2s: SIGKILL" in run.stderr


def test_checkpoint_dir_names_the_execution_and_the_task(tmp_path):
    # user text travels as data: quotes, $(...) and ${...} arrive as written
    job = job_file(tmp_path, {"script": 'echo "dir=$WFGEN_CHECKPOINT_DIR"'},
                   checkpoint_dir='gs://my-bucket/ck pt/$(x)/${"y"}/', name="train")
    run = run_local(tmp_path, job)
    assert run.returncode == 0, run.stderr
    execution_id = re.search(r"\(execution ([0-9a-f-]{36})\)", run.stderr).group(1)
    assert result_of(run)["output_tail"] == (
        f'dir=gs://my-bucket/ck pt/$(x)/${{"y"}}/train/{execution_id}\n')
    # in a fan-out, each task its own directory below the execution's
    job = job_file(tmp_path, {"script": 'echo "dir=$WFGEN_CHECKPOINT_DIR"'},
                   checkpoint_dir="gs://my-bucket/ckpt", name="sweep",
                   tasks={"count": 2})
    run = run_local(tmp_path, job)
    assert run.returncode == 0, run.stderr
    execution_id = re.search(r"\(execution ([0-9a-f-]{36})\)", run.stderr).group(1)
    for task in (0, 1):
        assert f"dir=gs://my-bucket/ckpt/sweep/{execution_id}/{task}" in run.stderr


def test_notify_without_a_serve_prints_the_message_and_bills_one_step(tmp_path):
    # a heartbeat longer than the job: no wake-ups to blur the step counts
    job = job_file(tmp_path, {"script": "echo done"}, heartbeat="1m",
                   notify={"pubsub_topic": "projects/p-123456/topics/training"})
    run = run_local(tmp_path, job, "--stats")
    assert run.returncode == 0, run.stderr
    [line] = [x for x in run.stderr.splitlines() if "Pub/Sub projects/p-123456" in x]
    assert "not published" in line and '"wfgen_event": "end"' in line
    assert '"status": "succeeded"' in line and '"output_tail":"done\\n"' in line
    plain = run_local(tmp_path, job_file(tmp_path, {"script": "echo done"}, heartbeat="1m"),
                      "--stats")
    steps = [int(re.search(r"= (\d+);", r.stderr).group(1)) for r in (run, plain)]
    assert steps[0] == steps[1] + 1  # one billed step for the message


def test_an_execution_that_ends_in_an_error_still_sends_word(tmp_path):
    job = job_file(tmp_path, {"script": "echo never"},
                   notify={"pubsub_topic": "projects/p-123456/topics/training"})
    run = run_local(tmp_path, job, "--fault", "insert-fail=QUOTA_EXCEEDED: no CPUs left")
    assert run.returncode == 125, run.stderr
    [line] = [x for x in run.stderr.splitlines() if "Pub/Sub projects/p-123456" in x]
    assert '"status": "error"' in line and "no CPUs left" in line
