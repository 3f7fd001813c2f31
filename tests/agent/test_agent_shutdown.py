"""The shutdown script: preemption/stop reports, once, and the startup
script's silence about a container that the shutdown killed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.agent.agentbed import Bed, Proc, only_report, wait_for_file


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
    # The shutdown kills the container, then systemd stops startup.sh: no second report.
    os.kill(job_pid, signal.SIGKILL)
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
