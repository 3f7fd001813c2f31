"""The startup script end to end: exit statuses, reporting, retries, tokens,
toolbox, reboots, GPUs and registries (the stand-ins record every call)."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from tests.agent.agentbed import STANDINS, Bed, Proc, gone, only_report, wait_for_file
from wfgen.job.resources import startup_dir, startup_script


@pytest.mark.parametrize(("script", "status", "code"), [
    ("exit 0", "succeeded", 0),
    ("exit 1", "failed", 1),
    ("exit 7", "failed", 7),
    ("kill -9 $$", "failed", 137),
    ("exit 127", "failed", 127),
])
def test_exit_code_reaches_callback_once(bed: Bed, script: str, status: str, code: int) -> None:
    bed.job(["sh", "-c", "echo working; " + script])
    proc = bed.run()
    assert proc.popen.returncode == 0, proc.log
    report = only_report(bed)
    assert (report["status"], report["exit_code"]) == (status, code)
    assert report["instance"] == "wfgen-test-vm"
    assert report["zone"] == "us-central1-a"
    assert report["restarts"] == 0
    assert report["output_tail"] == "working\n"
    assert report["started_at"].endswith("Z") and report["finished_at"] >= report["started_at"]
    assert len(bed.calls("docker", "run")) == 1


@pytest.mark.parametrize("how", ["-c", "stdin"])
def test_runs_as_a_string_or_on_stdin(bed: Bed, how: str) -> None:
    """The metadata runner runs a file; the local runtime may pass the text."""
    text = startup_script("startup.sh")
    argv = ["bash", "-c", text] if how == "-c" else ["bash", "-c", 'bash -s < "$0"',
                                                     str(startup_dir() / "startup.sh")]
    proc = Proc(argv, bed.env, bed.tmp / "log")
    bed.procs.append(proc)
    assert proc.wait(20) == 0, proc.log
    assert only_report(bed)["status"] == "succeeded"


def test_processes_left_by_the_job_end_with_it(bed: Bed) -> None:
    """Like a container: when the main process exits, its leftovers are killed
    (an orphan holding the output pipe must not delay the report)."""
    pidfile = bed.tmp / "orphan.pid"
    bed.job(["sh", "-c", f"sleep 30 & echo $! > {pidfile}; echo main done"])
    t0 = time.monotonic()
    bed.run()
    assert time.monotonic() - t0 < 5
    assert only_report(bed)["output_tail"] == "main done\n"
    assert gone(wait_for_file(pidfile))


def test_docker_run_125_is_an_error(bed: Bed) -> None:
    bed.run(WFGEN_STANDIN_FAIL="docker:run")
    report = only_report(bed)
    assert (report["status"], report["exit_code"]) == ("error", 125)


def test_failed_pull_is_an_error_and_is_retried(bed: Bed) -> None:
    bed.run(WFGEN_STANDIN_FAIL="docker:pull", WFGEN_PULL_TRIES="2")
    report = only_report(bed)
    assert (report["status"], report["exit_code"]) == ("error", 125)
    assert "pull" in report["message"]
    assert len(bed.calls("docker", "pull")) == 2
    assert bed.calls("docker", "run") == []


def test_bad_description_is_reported_not_run(bed: Bed) -> None:
    bed.md.set_attribute("wfgen-args", '["unterminated]')
    bed.run()
    report = only_report(bed)
    assert report["status"] == "error" and "wfgen-args" in report["message"]
    assert bed.calls("docker", "run") == []


def test_unexpected_failure_of_the_script_is_reported(bed: Bed, tmp_path: Path) -> None:
    """set -e ends the script on any failed command; the EXIT trap still reports."""
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    (wrap / "mkfifo").write_text("#!/bin/sh\nexit 1\n")
    (wrap / "mkfifo").chmod(0o755)
    proc = bed.run(PATH=f"{wrap}:{bed.env['PATH']}")
    report = only_report(bed)
    assert (report["status"], report["exit_code"]) == ("error", 125), proc.log
    assert report["message"] == "agent failed while running the container (exit 1)"
    assert bed.calls("docker", "run") == []


def test_empty_command_keeps_the_images_entrypoint(bed: Bed) -> None:
    bed.job([], args=["sh", "-c", "exit 3"])
    bed.run()
    report = only_report(bed)
    assert (report["status"], report["exit_code"]) == ("failed", 3)
    run = bed.calls("docker", "run")[0]
    assert not any(a.startswith("--entrypoint") for a in run)
    assert run[-4:] == ["alpine:3.20", "sh", "-c", "exit 3"]


def test_env_key_with_equals_sign_is_refused(bed: Bed) -> None:
    bed.job(["sh", "-c", "exit 0"], env={"A=B": "c"})
    bed.run()
    report = only_report(bed)
    assert report["status"] == "error" and "wfgen-env" in report["message"]
    assert bed.calls("docker", "run") == []


def test_missing_attribute_is_reported(bed: Bed) -> None:
    bed.md.set_attribute("wfgen-image", None)
    bed.run()
    report = only_report(bed)
    assert report["status"] == "error" and "image" in report["message"]


def test_output_tail_is_bounded_and_valid_utf8(bed: Bed) -> None:
    # 20 000 lines of output, then bytes that are not UTF-8, a control char, quotes.
    script = r"""seq 1 20000; printf 'caf\303\251 \377\376 \001 "q" \\ end\n'; exit 3"""
    bed.job(["sh", "-c", script])
    proc = bed.run()
    tail = only_report(bed)["output_tail"]
    assert len(tail.encode()) <= 4096 + 16
    assert tail.endswith('café \ufffd\ufffd \x01 "q" \\ end\n')
    assert "\n19999\n20000\n" in tail
    assert "20000" in proc.log  # the output also streamed to the VM's log


def test_script_job_runs_with_sh_c(bed: Bed) -> None:
    script = 'for a in "$@"; do printf "<%s>" "$a"; done; echo " $0"'
    bed.job(["sh", "-c", script + "\n", "name0", "x y", "$(z)"])
    bed.run()
    assert only_report(bed)["output_tail"] == "<x y><$(z)> name0\n"
    run = bed.calls("docker", "run")[0]
    assert "--entrypoint=sh" in run and run[-5:] == ["-c", script + "\n", "name0", "x y", "$(z)"]


def test_receiver_503_and_refused_delay_but_do_not_lose(tmp_path: Path) -> None:
    bed = Bed(tmp_path)
    try:
        bed.receiver.fail_first = 3
        bed.job(["sh", "-c", "exit 0"])
        proc = bed.start()
        end = time.monotonic() + 20
        while "callback answered 000" not in proc.log:  # connection refused ...
            assert time.monotonic() < end, proc.log
            time.sleep(0.02)
        bed.receiver.start()  # ... until the receiver listens
        proc.wait(20)
        report = only_report(bed)
        assert report["status"] == "succeeded"
        assert [p.status for p in bed.receiver.posts] == [503, 503, 503, 200]
        log = proc.log
        delays = [int(d) for d in re.findall(r"retrying in (\d+)ms", log)]
        assert delays[:4] == [50, 100, 200, 200]  # doubling from 50 ms, capped at 200 ms
    finally:
        bed.close()


def test_rejected_token_is_replaced_by_a_fresh_one(bed: Bed) -> None:
    bed.receiver.revoke_first = True
    bed.run()
    posts = bed.receiver.posts
    assert [p.status for p in posts] == [401, 200]
    assert posts[0].token != posts[1].token
    assert bed.md.check_token(posts[1].token) and not bed.md.check_token(posts[0].token)
    assert only_report(bed)["status"] == "succeeded"


def test_wrong_token_refused_by_receiver(bed: Bed) -> None:
    assert not bed.md.check_authorization("Bearer ya29.not-issued")
    assert not bed.md.check_authorization(None)
    assert bed.md.check_authorization("Bearer " + bed.md.issue_token())


def test_report_gives_up_after_deadline(tmp_path: Path) -> None:
    bed = Bed(tmp_path)  # receiver never listens
    try:
        start = time.monotonic()
        proc = bed.run(WFGEN_REPORT_DEADLINE="2")
        assert time.monotonic() - start < 8
        assert "report NOT delivered" in proc.log
        assert not (bed.state / "reported").exists()
        assert (bed.state / "report.json").exists()
        # then the VM powers off, so the workflow sees a lost attempt at once
        assert bed.calls("wfgen-poweroff") == [[]]
        assert (bed.state / "powered-off").exists()
    finally:
        bed.close()


def test_a_callback_that_is_gone_is_not_retried(tmp_path: Path) -> None:
    """404: the execution ended (cancelled, say). Retrying cannot help: one POST,
    then the VM powers off at once instead of retrying for the whole deadline."""
    bed = Bed(tmp_path)
    try:
        bed.receiver.gone = True
        bed.receiver.start()
        start = time.monotonic()
        proc = bed.run(WFGEN_REPORT_DEADLINE="60")
        assert time.monotonic() - start < 30
        assert [p.status for p in bed.receiver.posts] == [404]
        assert "callback gone (404)" in proc.log and "retrying" not in proc.log
        assert bed.calls("wfgen-poweroff") == [[]]
    finally:
        bed.close()


def test_token_never_in_logs_or_command_lines(bed: Bed, tmp_path: Path) -> None:
    # A curl wrapper records every command line the scripts give curl.
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    argv_log = tmp_path / "curl-argv"
    (wrap / "curl").write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >> {argv_log}\n'
                               'exec /usr/bin/curl "$@"\n')
    (wrap / "curl").chmod(0o755)
    bed.receiver.revoke_first = True
    proc = bed.run(PATH=f"{wrap}:{bed.env['PATH']}")
    tokens = [p.token for p in bed.receiver.posts]
    assert len(tokens) == 2 and all(tokens)
    seen = proc.log + argv_log.read_text() + bed.record.read_text()
    seen += "".join(f.read_text(errors="replace") for f in bed.state.glob("*") if f.is_file())
    for token in tokens:
        assert token not in seen
    assert "Authorization" not in argv_log.read_text()


def test_token_not_in_xtrace_output(bed: Bed) -> None:
    """Even `bash -x startup.sh` (debugging) and shutdown.sh never trace a token."""
    bed.job(["sh", "-c", "sleep 0.3"])  # with jq ready too
    proc = bed.start(bash_args=("-x",))
    proc.wait(20)
    (bed.state / "reported").unlink()
    (bed.state / "report.json").unlink()
    shutdown = bed.start("shutdown.sh", bash_args=("-x",))
    shutdown.wait(10)
    assert len(bed.receiver.accepted) == 2
    assert "+ main" in proc.log and "+ post" in shutdown.log  # it did trace
    for post in bed.receiver.posts:
        assert post.token not in proc.log + shutdown.log


@pytest.mark.slow
def test_slow_toolbox_does_not_delay_the_report(bed: Bed) -> None:
    marker = bed.tmp / "exited"
    bed.job(["sh", "-c", f"sleep 0.3; date +%s.%N > {marker}"])
    proc = bed.start(WFGEN_STANDIN_SLOW="toolbox:apt-get=30")
    bed.receiver.wait_accepted(1, timeout=10)
    proc.wait(5)  # the script itself does not wait for toolbox either
    exited = float(marker.read_text())
    delay = bed.receiver.posts[0].time - exited
    assert delay < 1.0, delay
    assert ["jq", "-r", ".access_token"] not in bed.calls("toolbox")  # fallback parser


def test_failing_toolbox_uses_fallback_parser(bed: Bed) -> None:
    bed.run(WFGEN_STANDIN_FAIL="toolbox")
    assert only_report(bed)["status"] == "succeeded"
    assert bed.calls("toolbox") == [["apt-get", "install", "-y", "jq"]]


def test_toolbox_printing_more_than_the_token_falls_back(bed: Bed, tmp_path: Path) -> None:
    """Real toolbox may print a banner around the command's output."""
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    (wrap / "toolbox").write_text('#!/bin/bash\necho "Spawning container toolbox..."\n'
                                  f'exec {STANDINS}/toolbox "$@"\n')
    (wrap / "toolbox").chmod(0o755)
    bed.job(["sh", "-c", "sleep 0.5"])
    bed.run(PATH=f"{wrap}:{bed.env['PATH']}")
    assert ["jq", "-r", ".access_token"] in bed.calls("toolbox")
    assert [p.status for p in bed.receiver.posts] == [200]


def test_ready_jq_parses_the_token(bed: Bed) -> None:
    bed.job(["sh", "-c", "sleep 0.5"])  # time for the toolbox install
    bed.run()
    assert only_report(bed)["status"] == "succeeded"
    assert ["jq", "-r", ".access_token"] in bed.calls("toolbox")


def test_reboot_after_finished_job_neither_reruns_nor_reports(bed: Bed) -> None:
    bed.run()
    assert only_report(bed)["status"] == "succeeded"
    proc = bed.run()
    assert "already reported" in proc.log
    assert len(bed.calls("docker", "run")) == 1
    assert len(bed.receiver.posts) == 1


def test_reboot_before_delivery_delivers_without_rerun(tmp_path: Path) -> None:
    bed = Bed(tmp_path)
    try:
        bed.job(["sh", "-c", "exit 4"])
        bed.run(WFGEN_REPORT_DEADLINE="1")  # receiver down: not delivered
        bed.receiver.start()
        bed.run()
        report = only_report(bed)
        assert (report["status"], report["exit_code"]) == ("failed", 4)
        assert len(bed.calls("docker", "run")) == 1
    finally:
        bed.close()


def test_reboot_during_job_reruns_once_and_counts(bed: Bed) -> None:
    pidfile = bed.tmp / "job.pid"
    bed.job(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 20"])
    first = bed.start()
    job_pid = int(wait_for_file(pidfile))
    first.kill_group()  # power loss: no trap runs, the container dies with the VM
    assert gone(job_pid)
    assert bed.receiver.posts == []
    bed.job(["sh", "-c", "echo resumed"])
    bed.run()
    report = only_report(bed)
    assert (report["status"], report["restarts"]) == ("succeeded", 1)
    assert report["output_tail"] == "resumed\n"
    assert len(bed.calls("docker", "run")) == 2
    bed.run()  # and a third boot does nothing
    assert len(bed.calls("docker", "run")) == 2 and len(bed.receiver.posts) == 1


def test_sigterm_reports_stopped_once_and_stops_the_container(bed: Bed) -> None:
    pidfile = bed.tmp / "job.pid"
    bed.job(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 20"])
    proc = bed.start()
    job_pid = int(wait_for_file(pidfile))
    proc.signal(signal.SIGTERM)
    proc.wait(10)
    report = only_report(bed)
    assert (report["status"], report["exit_code"]) == ("stopped", None)
    assert gone(job_pid)


def test_gpu_job_installs_driver_and_adds_devices(bed: Bed) -> None:
    bed.job(["sh", "-c", "exit 0"], accelerators=2)
    bed.run()
    assert only_report(bed)["status"] == "succeeded"
    assert bed.calls("cos-extensions") == [["install", "gpu"]]
    run = bed.calls("docker", "run")[0]
    for flag in ("--device=/dev/nvidia0", "--device=/dev/nvidia1", "--device=/dev/nvidiactl",
                 "--device=/dev/nvidia-uvm",
                 "--volume=/var/lib/nvidia/lib64:/usr/local/nvidia/lib64"):
        assert flag in run
    assert "--device=/dev/nvidia2" not in run


def test_gpu_driver_dir_is_remounted_exec(bed: Bed, tmp_path: Path) -> None:
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    calls = tmp_path / "mount-calls"
    (wrap / "mount").write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    (wrap / "mount").chmod(0o755)
    bed.job(["sh", "-c", "exit 0"], accelerators=1)
    bed.run(PATH=f"{wrap}:{bed.env['PATH']}", WFGEN_NVIDIA_REMOUNT="1")
    assert only_report(bed)["status"] == "succeeded"
    assert calls.read_text().splitlines() == [
        "--bind /var/lib/nvidia /var/lib/nvidia", "-o remount,exec /var/lib/nvidia"]


def test_no_gpu_no_driver(bed: Bed) -> None:
    bed.run()
    assert bed.calls("cos-extensions") == []
    assert not any(a.startswith("--device") for a in bed.calls("docker", "run")[0])


def test_container_shares_the_vms_network_and_ipc(bed: Bed) -> None:
    bed.run()
    run = bed.calls("docker", "run")[0]
    assert "--network=host" in run and "--ipc=host" in run  # /dev/shm for data loaders


def test_gpu_driver_failure_is_an_error(bed: Bed) -> None:
    bed.job(["sh", "-c", "exit 0"], accelerators=1)
    bed.run(WFGEN_STANDIN_FAIL="cos-extensions")
    report = only_report(bed)
    assert report["status"] == "error" and "cos-extensions" in report["message"]


@pytest.mark.parametrize(("image", "host"), [
    ("us-docker.pkg.dev/p/repo/train:1.4", "us-docker.pkg.dev"),
    ("europe-west4-docker.pkg.dev/p/r/i@sha256:" + "a" * 64, "europe-west4-docker.pkg.dev"),
    ("gcr.io/p/img", "gcr.io"),
    ("eu.gcr.io/p/img:2", "eu.gcr.io"),
    ("alpine:3.20", None),
    ("docker.io/library/python:3.12", None),
    ("ghcr.io/o/i", None),
])
def test_private_registry_configures_credential_helper(bed: Bed, image: str,
                                                       host: str | None) -> None:
    bed.job(["sh", "-c", "exit 0"], image=image)
    bed.run()
    expected = [["configure-docker", f"--registries={host}"]] if host else []
    assert bed.calls("docker-credential-gcr") == expected
    assert bed.calls("docker", "pull") == [["pull", image]]
    assert only_report(bed)["status"] == "succeeded"


def test_report_is_the_saved_file(bed: Bed) -> None:
    bed.job(["sh", "-c", "exit 2"])
    bed.run()
    saved = json.loads((bed.state / "report.json").read_text())
    assert saved == only_report(bed)


def test_credential_helper_failure_is_an_error(bed: Bed) -> None:
    bed.job(["sh", "-c", "exit 0"], image="us-docker.pkg.dev/p/r/i:1")
    bed.run(WFGEN_STANDIN_FAIL="docker-credential-gcr")
    report = only_report(bed)
    assert (report["status"], report["exit_code"]) == ("error", 125)
    assert "us-docker.pkg.dev" in report["message"]
    assert bed.calls("docker", "pull") == []
