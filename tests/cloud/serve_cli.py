"""A real `wfgen serve` on two free loopback ports (REST P, gRPC P+1, which is
where the cloud commands look for it), and `wfgen` cloud commands run against
it with WORKFLOWS_EMULATOR_HOST alone, as a user would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROJECT = "local-project"  # the cloud commands' default project against serve
GCLOUD = shutil.which("gcloud")


def free_port_pair() -> int:
    """A port P with P and P+1 both free (serve's gRPC port is REST + 1)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that could reach a real Google service."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLOUDSDK_", "GOOGLE_", "WORKFLOWS_EMULATOR", "GCE_"))}
    env.update(extra)
    return env


class Serve:
    """One `wfgen serve --data-dir :memory: --on-host` for a test module."""

    def __init__(self, tmp: Path, *extra_args: str) -> None:
        self.tmp = tmp
        self.extra_args = extra_args
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self.port = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Serve:
        for _attempt in range(5):
            self.port = free_port_pair()
            self.lines = []
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wfgen", "serve", "--port", str(self.port),
                 "--grpc-port", str(self.port + 1), "--on-host", "--data-dir", ":memory:",
                 *self.extra_args],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True, env=clean_env(TMPDIR=str(self.tmp)))
            ready = threading.Event()

            def pump(proc: subprocess.Popen[str] = self.proc, done: threading.Event = ready
                     ) -> None:
                assert proc.stderr is not None
                for line in proc.stderr:
                    self.lines.append(line.rstrip("\n"))
                    if line.startswith("export WORKFLOWS_EMULATOR_HOST="):
                        done.set()
                done.set()

            threading.Thread(target=pump, daemon=True).start()
            ready.wait(60)
            if self.proc.poll() is None:
                return self
        raise RuntimeError("wfgen serve did not start:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(**{"WORKFLOWS_EMULATOR_HOST": self.host, **extra})

    def wfgen(self, *args: str, timeout: float = 180, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "wfgen", *args], capture_output=True,
                              text=True, timeout=timeout, env=env or self.env())
        assert "Traceback" not in done.stderr + done.stdout, done.stderr
        return done

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "wfgen", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env())

    def rest(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://{self.host}{path}", method=method, data=data,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def vms(self, execution_id: str | None = None) -> list[dict[str, Any]]:
        """Every instance serve has now (optionally those of one execution)."""
        items = self.rest("GET", f"/compute/v1/projects/{PROJECT}/aggregated/instances")
        found = [vm for scope in (items.get("items") or {}).values()
                 for vm in scope.get("instances") or []]
        return [vm for vm in found if execution_id is None
                or (vm.get("labels") or {}).get("wfgen-execution") == execution_id]

    def wait_for(self, check: Any, what: str, timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\nserve log:\n"
                             + "\n".join(self.lines[-40:]))

    def gcloud(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert GCLOUD, "gcloud is not installed"
        config = self.tmp / "gcloud-config"
        config.mkdir(exist_ok=True)
        url = f"http://{self.host}/"
        env = clean_env(
            CLOUDSDK_CONFIG=str(config), CLOUDSDK_AUTH_DISABLE_CREDENTIALS="true",
            CLOUDSDK_CORE_PROJECT=PROJECT, CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="true",
            CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK="true",
            CLOUDSDK_CORE_DISABLE_PROMPTS="true", CLOUDSDK_WORKFLOWS_LOCATION="us-central1",
            CLOUDSDK_API_ENDPOINT_OVERRIDES_WORKFLOWS=url,
            CLOUDSDK_API_ENDPOINT_OVERRIDES_WORKFLOWEXECUTIONS=url,
            CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE=url,
            CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDSCHEDULER=url,
            CLOUDSDK_API_ENDPOINT_OVERRIDES_EVENTARC=url,
            CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB=url)
        return subprocess.run([GCLOUD, *args], capture_output=True, text=True, timeout=180,
                              env=env)


def job(path: Path, name: str, script: str, **fields: Any) -> str:
    """A job spec (JSON is YAML) whose container runs `script` with sh -c."""
    spec = {"name": name, "container": {"image": "alpine:3.20", "script": script},
            "timeout": "10m", "heartbeat": "1m", "retries": 0, **fields}
    path.write_text(json.dumps(spec), encoding="utf-8")
    return str(path)


@contextmanager
def serve_bucket(folder: Path, bucket: str) -> Iterator[Any]:
    """A bucket in a serve of its own, with STORAGE_EMULATOR_HOST pointing
    google-cloud-storage (and `wfgen run --local`'s Storage connector) at it
    while the block runs."""
    import pytest
    from google.cloud import storage

    server = Serve(folder).start()
    try:
        with pytest.MonkeyPatch.context() as env:  # restored after the block
            env.setenv("STORAGE_EMULATOR_HOST", f"http://{server.host}")
            yield storage.Client(project="local-project").create_bucket(bucket)
    finally:
        assert server.stop() == 0
