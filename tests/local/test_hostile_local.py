"""Hostile jobs, clients and signals against the local runtime: every process a
VM started ends, no scratch directory outlives its wfgen, the loopback servers
answer 400 (never a traceback), and every ending prints a result map."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from wfgen.local.callbacks import CallbackServer
from wfgen.local.loopback import Request
from wfgen.local.metadata import MetadataServer
from wfgen.local.vm import LocalVM, marked_pids, sweep_stale_scratch

from .test_run_local import FAST, job_file, result_of, run_local, vm_processes

pytestmark = pytest.mark.xdist_group("run_local")


def _named(words: str) -> list[str]:
    """Command lines of live processes containing `words`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if words in cmd and state not in ("Z", "X"):
            found.append(f"{proc.name}: {cmd}")
    return found


def test_a_vm_ends_processes_that_left_its_group(tmp_path):
    # setsid: a new session and group; the second ignores SIGTERM as well
    script = ("setsid sleep 4242 & (trap '' TERM; exec setsid sleep 4243) & "
              "trap '' TERM; sleep 300")
    vm = LocalVM("hostile", "z", "p", {"startup-script": script}, output=lambda *_: None,
                 notify=lambda _: None, use_container_engine=False)
    vm.boot()
    deadline = time.monotonic() + 10
    while len(_named("sleep 424")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_named("sleep 424")) >= 2
    vm.destroy()
    assert marked_pids(vm.marker) == []
    assert _named("sleep 4242") == [] and _named("sleep 4243") == []
    assert not vm.processes_alive()


def test_vanished_vm_with_a_setsid_child_leaves_nothing(tmp_path):
    job = job_file(tmp_path, {"script": "setsid sleep 4244 & sleep 300"}, retries=0)
    run = run_local(tmp_path, job, "--fault", "vanish@1s")
    assert run.returncode == 125
    assert _named("sleep 4244") == []


def test_stale_scratch_of_a_dead_wfgen_is_swept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"wfgen-vm-{dead.pid}-job-1-abc"
    (stale / "work").mkdir(parents=True)
    mine = tmp_path / f"wfgen-vm-{os.getpid()}-job-1-def"
    mine.mkdir()
    other = tmp_path / "wfgen-vm-notapid-x"
    other.mkdir()
    assert sweep_stale_scratch(str(tmp_path)) == [stale]
    assert not stale.exists() and mine.exists() and other.exists()


def test_a_kill_before_the_launcher_leaves_nothing_for_long(tmp_path):
    # wfgen killed right after making the scratch directory: the next VM sweeps it
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    code = ("import os, tempfile; tempfile.mkdtemp(prefix=f'wfgen-vm-{os.getpid()}-j-'); "
            "os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "TMPDIR": str(scratch)},
                   check=False)
    assert len(list(scratch.iterdir())) == 1
    old = tempfile.tempdir
    tempfile.tempdir = str(scratch)
    try:
        vm = LocalVM("next", "z", "p", {}, output=lambda *_: None, notify=lambda _: None,
                     use_container_engine=False)
        assert list(scratch.iterdir()) == [vm.scratch]
        vm.destroy()
    finally:
        tempfile.tempdir = old


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_callback_server_answers_400_to_a_bad_content_length(capfd):
    with CallbackServer(lambda token: token == "good") as srv:
        url = srv.create_endpoint({})["url"]
        path = url.split(str(srv._server.port), 1)[1]  # type: ignore[union-attr]
        port = srv._server.port  # type: ignore[union-attr]
        reply = _raw(port, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n"
                           "Authorization: Bearer good\r\n\r\n".encode())
        assert reply.startswith(b"HTTP/1.1 400")
        # a client that hangs up mid-body, then one that never sends a request line
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\nContent-Length: 100\r\n\r\nab".encode())
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        body = json.dumps({"ok": 1}).encode()
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Authorization": "Bearer good", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        event = srv.await_request({"url": url}, 5)
        assert event["http_request"]["body"] == {"ok": 1}
        assert event["http_request"]["headers"]["Content-Type"] == "application/json"
    assert "Traceback" not in capfd.readouterr().err


def test_callback_server_handle_is_mountable():
    srv = CallbackServer(lambda token: token == "t").mount("http://127.0.0.1:9")
    url = srv.create_endpoint({"GOOGLE_CLOUD_PROJECT_ID": "p"})["url"]
    path = url[len("http://127.0.0.1:9"):]
    assert srv.handle(Request("GET", "/elsewhere", {}, {})) is None
    ok = srv.handle(Request("POST", path, {"a": ["1"]}, {"authorization": "Bearer t"}, b"x"))
    assert ok is not None and ok.status == 200
    assert srv.await_request({"url": url}, 1)["http_request"]["query"] == {"a": "1"}
    bad = srv.handle(Request("POST", path, {}, {"authorization": "Bearer nope"}))
    assert bad is not None and bad.status == 401


@pytest.mark.parametrize("timeout", ["inf", "1e300", "nan", "-1", "abc"])
def test_metadata_server_answers_400_to_a_bad_timeout(timeout, capfd):
    with MetadataServer("vm", "z", "p") as md:
        req = urllib.request.Request(
            f"{md.url}instance/preempted?wait_for_change=true&timeout_sec={timeout}",
            headers={"Metadata-Flavor": "Google"})
        t0 = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=20)
        assert info.value.code == 400
        assert time.monotonic() - t0 < 15  # answered, not held
        # a client that disconnects while waiting costs one log line at most
        with socket.create_connection(("127.0.0.1", md.port), timeout=5) as sock:
            sock.sendall(b"GET /computeMetadata/v1/instance/preempted?wait_for_change=true"
                         b"&timeout_sec=1 HTTP/1.1\r\nMetadata-Flavor: Google\r\n\r\n")
        time.sleep(1.3)
    assert "Traceback" not in capfd.readouterr().err


def test_insert_failure_prints_a_result_map(tmp_path):
    run = run_local(tmp_path, job_file(tmp_path, {"script": "echo never"}),
                    "--fault", "insert-fail=quota exceeded")
    assert run.returncode == 125
    result = result_of(run)
    assert result["status"] == "error" and result["exit_code"] is None
    assert result["message"] == "quota exceeded"


def test_one_ctrl_c_exits_promptly_while_the_callback_is_unreachable(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    job = job_file(tmp_path, {"script": "echo started; sleep 60"})
    env = {**os.environ, **FAST, "TMPDIR": str(scratch), "WFGEN_STOP_DEADLINE": "30"}
    proc = subprocess.Popen([sys.executable, "-m", "wfgen", "run", "--local", "--on-host", str(job),
                             "--fault", "refuse-callbacks=100000"],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "started" in line:
            break
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 130, err
    # 2 s is the goal (1 s of grace, then SIGKILL); a loaded machine gets slack
    assert took < 8, f"exit took {took:.1f} s"
    assert json.loads(out)["status"] == "cancelled"
    deadline = time.monotonic() + 3
    while vm_processes(scratch) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert vm_processes(scratch) == []


def test_when_wfgen_is_killed_a_setsid_child_of_its_vm_goes_too(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    job = job_file(tmp_path, {"script": "setsid sleep 4245 & echo started; sleep 60"})
    proc = subprocess.Popen([sys.executable, "-m", "wfgen", "run", "--local", "--on-host",
                             str(job)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, **FAST, "TMPDIR": str(scratch)})
    assert proc.stderr is not None
    for line in proc.stderr:
        if "started" in line:
            break
    assert _named("sleep 4245")
    proc.send_signal(signal.SIGKILL)  # only the VM's watchdog can clean up now
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while (_named("sleep 4245") or list(scratch.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _named("sleep 4245") == []
    assert list(scratch.iterdir()) == []
