"""The shutdown script: preemption/stop reports, once, and the startup
script's silence about a container that the shutdown killed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.agent.agentbed import Bed, Proc, gone, only_report, wait_for_file


def start_long_job(bed: Bed) -> tuple[Proc, int]:
    pidfile = bed.tmp / "job.pid"
    bed.job(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 20"])
    proc = bed.start()
    return proc, int(wait_for_file(pidfile))


def test_preemption_is_reported_once(bed: Bed) -> None:
    startup, job_pid = start_long_job(bed)
    bed.md.set_preempted(True)
    t0 = time.monotonic()
    shutdown = bed.run("shutdown.sh", timeout=10)
    assert shutdown.popen.returncode == 0, shutdown.log
    assert time.monotonic() - t0 < 3
    report = only_report(bed)
    assert (report["status"], report["exit_code"]) == ("preempted", None)
    assert report["instance"] == "wfgen-test-vm" and report["zone"] == "us-central1-a"
    # The shutdown stopped the container (sleep dies at SIGTERM): no second report.
    assert gone(job_pid)
    assert report["exited_in_grace"] is True and report["stop_grace_s"] == 25
    assert "within its 25s grace" in report["message"]
    assert startup.wait(10) == 0
    assert "shutdown.sh reports" in startup.log
    assert len(bed.receiver.posts) == 1


def test_stop_without_preemption_reports_stopped(bed: Bed) -> None:
    startup, _ = start_long_job(bed)
    bed.run("shutdown.sh", timeout=10)
    startup.signal(signal.SIGTERM)  # systemd stops the startup script too
    startup.wait(10)
    report = only_report(bed)
    assert (report["status"], report["exit_code"]) == ("stopped", None)
    assert len(bed.receiver.posts) == 1


def test_stop_report_to_a_callback_that_is_gone_is_not_retried(bed: Bed) -> None:
    """A VM deleted after its execution was cancelled: the callback answers 404,
    and shutdown.sh stops at once instead of retrying for its whole deadline."""
    startup, _ = start_long_job(bed)
    bed.receiver.gone = True
    proc = bed.run("shutdown.sh", timeout=10, WFGEN_STOP_DEADLINE="30")
    startup.signal(signal.SIGTERM)
    startup.wait(10)
    assert "callback gone (404)" in proc.log
    assert all(p.status == 404 for p in bed.receiver.posts) and len(bed.receiver.posts) <= 2


def test_signal_death_during_preemption_is_not_a_failure(bed: Bed) -> None:
    # The container is killed before shutdown.sh starts: startup.sh asks metadata.
    startup, job_pid = start_long_job(bed)
    bed.md.set_preempted(True)
    os.kill(job_pid, signal.SIGKILL)
    startup.wait(10)
    bed.run("shutdown.sh", timeout=10)
    report = only_report(bed)
    assert report["status"] == "preempted"
    assert len(bed.receiver.posts) == 1


def test_shutdown_after_report_does_nothing(bed: Bed) -> None:
    bed.run()
    assert only_report(bed)["status"] == "succeeded"
    bed.md.set_preempted(True)
    proc = bed.run("shutdown.sh", timeout=10)
    assert "already reported" in proc.log
    assert len(bed.receiver.posts) == 1


def test_shutdown_delivers_a_finished_but_undelivered_report(tmp_path: Path) -> None:
    bed = Bed(tmp_path)  # receiver down while the startup script tries
    try:
        bed.job(["sh", "-c", "exit 5"])
        bed.run(WFGEN_REPORT_DEADLINE="1")
        bed.receiver.start()
        bed.md.set_preempted(True)
        bed.run("shutdown.sh", timeout=10)
        report = only_report(bed)
        assert (report["status"], report["exit_code"]) == ("failed", 5)
    finally:
        bed.close()


def test_shutdown_with_no_job_still_reports(bed: Bed) -> None:
    bed.md.set_preempted(True)
    bed.run("shutdown.sh", timeout=10)
    assert only_report(bed)["status"] == "preempted"


def test_guest_reboot_is_not_reported_and_the_job_resumes(bed: Bed, tmp_path: Path) -> None:
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    (wrap / "systemctl").write_text("#!/bin/sh\n"
                                    'echo "1234 reboot.target start waiting"\n')
    (wrap / "systemctl").chmod(0o755)
    startup, _ = start_long_job(bed)
    proc = bed.run("shutdown.sh", timeout=10, PATH=f"{wrap}:{bed.env['PATH']}")
    assert "rebooting" in proc.log
    startup.kill_group()  # the reboot ends everything
    assert bed.receiver.posts == []
    bed.job(["sh", "-c", "echo again"])
    bed.run()
    report = only_report(bed)
    assert (report["status"], report["restarts"]) == ("succeeded", 1)


# -- the stop grace: SIGTERM, time to save a checkpoint, then SIGKILL ------------

CHECKPOINTER = r"""
trap 'echo "saving at step $i"; sleep 0.3; echo "step=$i" > "$CKPT"; echo saved; exit 0' TERM
echo "attempt=$WFGEN_ATTEMPT execution=$WFGEN_EXECUTION_ID restarts=$WFGEN_RESTARTS"
echo "checkpoints in $WFGEN_CHECKPOINT_DIR"
echo $$ > "$PIDFILE"
i=0; while :; do i=$((i + 1)); sleep 0.1; done
"""


def identity(bed: Bed, attempt: int, grace: int | None = None) -> None:
    """The metadata the workflow gives each attempt's VM."""
    bed.md.set_attribute("wfgen-execution-id", "0d9fe4ce-aaaa-bbbb-cccc-0123456789ab")
    bed.md.set_attribute("wfgen-attempt", str(attempt))
    bed.md.set_attribute("wfgen-checkpoint-dir",
                         "gs://bucket/ckpt/train/0d9fe4ce-aaaa-bbbb-cccc-0123456789ab")
    if grace is not None:
        bed.md.set_attribute("wfgen-stop-grace", str(grace))


def test_preemption_gives_the_container_its_grace_to_checkpoint(bed: Bed) -> None:
    ckpt, pidfile = bed.tmp / "ckpt.txt", bed.tmp / "job.pid"
    identity(bed, attempt=1, grace=5)
    bed.job(["sh", "-c", CHECKPOINTER], env={"CKPT": str(ckpt), "PIDFILE": str(pidfile)})
    startup = bed.start()
    wait_for_file(pidfile)
    bed.md.set_preempted(True)
    t0 = time.monotonic()
    shutdown = bed.run("shutdown.sh", timeout=15)
    assert shutdown.popen.returncode == 0, shutdown.log
    assert time.monotonic() - t0 < 4  # it exited long before the 5 s grace
    assert ckpt.read_text().startswith("step=")  # the checkpoint was written in time
    report = only_report(bed)
    assert (report["status"], report["exit_code"]) == ("preempted", None)
    assert (report["stop_grace_s"], report["exited_in_grace"]) == (5, True)
    assert "within its 5s grace" in report["message"]
    # the report carries the output written during the grace
    assert "saving at step" in report["output_tail"] and "saved\n" in report["output_tail"]
    assert ("attempt=1 execution=0d9fe4ce-aaaa-bbbb-cccc-0123456789ab restarts=0"
            in report["output_tail"])
    assert "checkpoints in gs://bucket/ckpt/train/0d9fe4ce-" in report["output_tail"]
    # the container exited 0 after SIGTERM: startup.sh still leaves the report to shutdown.sh
    assert startup.wait(10) == 0
    assert "shutdown.sh reports" in startup.log
    assert len(bed.receiver.posts) == 1
    kills = bed.calls("docker", "kill")
    assert [k[:2] for k in kills] == [["kill", "--signal=TERM"]]  # never SIGKILL


def test_a_container_that_ignores_sigterm_is_killed_after_the_grace(bed: Bed) -> None:
    pidfile = bed.tmp / "job.pid"
    identity(bed, attempt=2, grace=2)
    bed.job(["sh", "-c", f"trap 'echo ignoring TERM' TERM; echo $$ > {pidfile}; "
                         "while :; do sleep 0.1; done"])
    startup = bed.start()
    job_pid = int(wait_for_file(pidfile))
    t0 = time.monotonic()
    shutdown = bed.run("shutdown.sh", timeout=15)
    took = time.monotonic() - t0
    assert shutdown.popen.returncode == 0, shutdown.log
    assert 2 <= took < 6, took
    assert gone(job_pid)
    report = only_report(bed)
    assert (report["status"], report["exited_in_grace"], report["stop_grace_s"]) == (
        "stopped", False, 2)
    assert "did not exit within its 2s grace after SIGTERM: killed" in report["message"]
    assert "ignoring TERM" in report["output_tail"]
    assert [k[:2] for k in bed.calls("docker", "kill")] == [["kill", "--signal=TERM"],
                                                             ["kill", "--signal=KILL"]]
    startup.signal(signal.SIGTERM)  # systemd stops the startup script too
    startup.wait(10)
    assert len(bed.receiver.posts) == 1


def test_sigterm_to_the_agent_gives_the_grace_too(bed: Bed) -> None:
    """systemd may stop the startup script before the shutdown script runs: the
    agent itself gives the container its grace, then reports the stop."""
    ckpt, pidfile = bed.tmp / "ckpt.txt", bed.tmp / "job.pid"
    identity(bed, attempt=1, grace=5)
    bed.job(["sh", "-c", CHECKPOINTER], env={"CKPT": str(ckpt), "PIDFILE": str(pidfile)})
    startup = bed.start()
    wait_for_file(pidfile)
    startup.signal(signal.SIGTERM)
    startup.wait(10)
    assert ckpt.exists()
    report = only_report(bed)
    assert (report["status"], report["exited_in_grace"]) == ("stopped", True)
    assert "VM stopped while the job ran; the container exited" in report["message"]
    shutdown = bed.run("shutdown.sh", timeout=10)  # then the VM stops: nothing more
    assert "already reported" in shutdown.log
    assert len(bed.receiver.posts) == 1


def test_the_next_attempt_sees_the_same_identity(bed: Bed, tmp_path: Path) -> None:
    """A preempted attempt, then the retry on a new VM (a fresh state dir): the
    same execution id and checkpoint dir, the next attempt number."""
    ckpt, pidfile = bed.tmp / "ckpt.txt", bed.tmp / "job.pid"
    identity(bed, attempt=1, grace=5)
    bed.job(["sh", "-c", CHECKPOINTER], env={"CKPT": str(ckpt), "PIDFILE": str(pidfile)})
    startup = bed.start()
    wait_for_file(pidfile)
    bed.md.set_preempted(True)
    bed.run("shutdown.sh", timeout=15)
    startup.wait(10)
    first = only_report(bed)
    assert first["status"] == "preempted" and ckpt.exists()
    # attempt 2: a new VM
    bed.md.set_preempted(False)
    subprocess.run(["rm", "-rf", str(bed.state)], check=True)
    bed.receiver.posts.clear()
    identity(bed, attempt=2)
    bed.job(["sh", "-c", 'echo "resuming from $(cat "$CKPT") attempt=$WFGEN_ATTEMPT '
                         'execution=$WFGEN_EXECUTION_ID dir=$WFGEN_CHECKPOINT_DIR"'],
            env={"CKPT": str(ckpt)})
    bed.run()
    second = only_report(bed)
    assert second["status"] == "succeeded"
    assert second["output_tail"] == (
        f"resuming from {ckpt.read_text().strip()} attempt=2 "
        "execution=0d9fe4ce-aaaa-bbbb-cccc-0123456789ab "
        "dir=gs://bucket/ckpt/train/0d9fe4ce-aaaa-bbbb-cccc-0123456789ab\n")


def test_no_identity_metadata_sets_only_the_restarts(bed: Bed) -> None:
    bed.job(["sh", "-c", 'echo "[${WFGEN_ATTEMPT-unset}] [${WFGEN_EXECUTION_ID-unset}] '
                         '[${WFGEN_CHECKPOINT_DIR-unset}] [$WFGEN_RESTARTS]"'],
            env={"WFGEN_RESTARTS": "user value loses"})
    bed.run()
    assert only_report(bed)["output_tail"] == "[unset] [unset] [unset] [0]\n"


def test_a_bad_grace_in_metadata_means_the_default(bed: Bed) -> None:
    bed.md.set_attribute("wfgen-stop-grace", "soon; rm -rf /")
    startup, job_pid = start_long_job(bed)
    bed.run("shutdown.sh", timeout=10)
    assert gone(job_pid)
    report = only_report(bed)
    assert report["stop_grace_s"] == 25 and report["exited_in_grace"] is True
    startup.signal(signal.SIGTERM)
    startup.wait(10)
