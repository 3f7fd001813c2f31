"""Test bed for the VM agent: the real startup/shutdown scripts under bash,
with real curl and jq, the local metadata server, the stand-ins for docker,
toolbox, cos-extensions and docker-credential-gcr, and a callback receiver that
checks bearer tokens the way the Workflows callback endpoint does.

Everything listens on 127.0.0.1. Scripts run in their own session with their
output in a file (a background `toolbox` may outlive them and would hold a
pipe open); `Bed.close()` kills whatever a test left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from wfgen.job.resources import startup_dir
from wfgen.local.metadata import MetadataServer

STANDINS = Path(__file__).resolve().parents[2] / "wfgen" / "local" / "standins"
RECORDER = Path(__file__).resolve().parent / "recorder.py"


@dataclass
class Post:
    """One POST seen by the receiver."""

    time: float
    authorization: str
    body: bytes
    status: int

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body.decode("utf-8"))

    @property
    def token(self) -> str:
        return self.authorization.removeprefix("Bearer ")


@dataclass
class Receiver:
    """A callback endpoint on loopback. The port is bound at once but only
    listens after `start()`, so until then POSTs get "connection refused"."""

    md: MetadataServer
    fail_first: int = 0  # answer 503 to the first N POSTs
    revoke_first: bool = False  # revoke all tokens at the first POST, answer 401
    gone: bool = False  # the execution has ended: every POST gets 404
    posts: list[Post] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # small replies: no 40 ms delayed-ACK stalls

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                auth = self.headers.get("Authorization", "")
                status = receiver._decide(auth, self.headers.get("Content-Type", ""))
                with receiver._cond:
                    receiver.posts.append(Post(time.time(), auth, body, status))
                    receiver._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._cond = threading.Condition()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self._httpd.daemon_threads = True
        self._httpd.server_bind()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        port = self._httpd.server_address[1]
        return f"http://127.0.0.1:{port}/v1/projects/p/locations/l/workflows/w/executions/e/callbacks/cb1"

    def _decide(self, auth: str, ctype: str) -> int:
        with self._cond:
            n = len(self.posts)
        if self.gone:
            return 404
        if n < self.fail_first:
            return 503
        if self.revoke_first and n == 0:
            self.md.revoke_tokens()
            return 401
        if not self.md.check_authorization(auth):
            return 401
        return 200 if ctype == "application/json" else 415

    def start(self, delay: float = 0.0) -> None:
        def go() -> None:
            time.sleep(delay)
            self._httpd.server_activate()
            self._httpd.serve_forever(poll_interval=0.05)

        self._thread = threading.Thread(target=go, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def accepted(self) -> list[dict[str, Any]]:
        with self._cond:
            return [p.json for p in self.posts if 200 <= p.status < 300]

    def wait_accepted(self, n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        end = time.monotonic() + timeout
        with self._cond:
            while sum(200 <= p.status < 300 for p in self.posts) < n:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no report within {timeout}s; posts: {self.posts}")
                self._cond.wait(left)
        return self.accepted


class Proc:
    """A script run in its own session, output in a file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.started = time.time()
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, timeout: float = 20.0) -> int:
        return self.popen.wait(timeout)

    @property
    def log(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(5)


class Bed:
    """One VM's worth of agent: metadata, state dir, stand-ins, receiver."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.state = tmp / "state"
        self.record = tmp / "record.jsonl"
        shim = tmp / "shim"
        shim.mkdir(parents=True, exist_ok=True)
        # The stand-ins say `#!/usr/bin/env python3`: make that this venv's python.
        (shim / "python3").symlink_to(sys.executable)
        (tmp / "home").mkdir(exist_ok=True)
        self.md = MetadataServer("wfgen-test-vm", "us-central1-a", "test-project").start()
        self.receiver = Receiver(self.md)
        self.md.set_attribute("wfgen-callback-url", self.receiver.url)
        # as the workflow does: shutdown.sh sources it for the tail and the stop grace
        self.md.set_attribute("startup-script",
                              (startup_dir() / "startup.sh").read_text(encoding="utf-8"))
        (tmp / "tmp").mkdir(exist_ok=True)
        self.job(["sh", "-c", "echo hello"])
        self.env: dict[str, str] = {
            "PATH": f"{shim}:{STANDINS}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(tmp / "home"),
            "TMPDIR": str(tmp / "tmp"),
            "GCE_METADATA_HOST": self.md.host,
            "WFGEN_STATE_DIR": str(self.state),
            "WFGEN_REPORT_DEADLINE": "15",
            "WFGEN_STOP_DEADLINE": "5",
            "WFGEN_BACKOFF_MS": "50",
            "WFGEN_BACKOFF_MAX_MS": "200",
            "WFGEN_NVIDIA_REMOUNT": "0",
            "WFGEN_POWEROFF": "wfgen-poweroff",  # never the host's own power-off
            "WFGEN_STANDIN_RECORD": str(self.record),
        }
        self.procs: list[Proc] = []
        self._n = 0

    def job(self, command: list[str], args: list[str] | None = None,
            env: dict[str, str] | None = None, image: str = "alpine:3.20",
            accelerators: int = 0) -> None:
        """Describe the container in metadata, as the workflow does."""
        self.md.set_attribute("wfgen-image", image)
        self.md.set_attribute("wfgen-command", json.dumps(command))
        self.md.set_attribute("wfgen-args", json.dumps(args or []))
        self.md.set_attribute("wfgen-env", json.dumps(env or {}))
        self.md.set_attribute("wfgen-accelerator-count", str(accelerators))

    def start(self, script: str = "startup.sh", bash_args: tuple[str, ...] = (),
              **env: str) -> Proc:
        self._n += 1
        proc = Proc(["bash", *bash_args, str(startup_dir() / script)], {**self.env, **env},
                    self.tmp / f"{script}.{self._n}.log")
        self.procs.append(proc)
        return proc

    def run(self, script: str = "startup.sh", timeout: float = 20.0, **env: str) -> Proc:
        proc = self.start(script, **env)
        proc.wait(timeout)
        return proc

    def calls(self, tool: str, sub: str | None = None) -> list[list[str]]:
        """argv of each recorded call of TOOL (and first argument SUB)."""
        if not self.record.exists():
            return []
        rows = [json.loads(line) for line in self.record.read_text().splitlines()]
        return [r["argv"] for r in rows if r["tool"] == tool
                and (sub is None or (r["argv"][:1] == [sub]))]

    def call_times(self, tool: str, sub: str) -> list[float]:
        rows = [json.loads(line) for line in self.record.read_text().splitlines()]
        return [r["time"] for r in rows if r["tool"] == tool and r["argv"][:1] == [sub]]

    def close(self) -> None:
        for proc in self.procs:
            proc.kill_group()
        self.receiver.stop()
        self.md.stop()


REPORT_KEYS = {"status", "exit_code", "started_at", "finished_at", "instance", "zone",
               "restarts", "output_tail", "message"}
GRACE_KEYS = {"stop_grace_s", "exited_in_grace"}  # stop reports of a running container


def only_report(bed: Bed) -> dict[str, Any]:
    """The one accepted report (and assert there was exactly one)."""
    accepted = bed.receiver.accepted
    assert len(accepted) == 1, accepted
    keys = set(accepted[0])
    assert keys in (REPORT_KEYS, REPORT_KEYS | GRACE_KEYS), keys
    return accepted[0]


def gone(pid: int | str, timeout: float = 3.0) -> bool:
    """Wait until PID has exited (absent or a zombie nobody reaped yet)."""
    end = time.monotonic() + timeout
    while True:
        try:
            with open(f"/proc/{int(pid)}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    return True
        except FileNotFoundError:
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.02)


def wait_for_file(path: Path, timeout: float = 10.0) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.stat().st_size:
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} did not appear")
