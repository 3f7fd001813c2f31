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
