"""A real `wfgen serve` process for a test module, and gcloud pointed at it.

`Serve.start()` runs `python -m wfgen serve --port 0 --grpc-port 0 --on-host` (or without
--on-host)
and reads the bound ports from its stderr; `gcloud(...)` runs the real CLI
with a private CLOUDSDK_CONFIG and the endpoint overrides serve prints."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

GCLOUD = shutil.which("gcloud") or ("/usr/bin/gcloud" if Path("/usr/bin/gcloud").exists()
                                    else None)
FAST = {"WFGEN_BACKOFF_MS": "100", "WFGEN_BACKOFF_MAX_MS": "400", "WFGEN_STOP_DEADLINE": "3"}
PROJECT = "demo"
LOCATION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"


class Serve:
    """One `wfgen serve` process (start, stop, restart on the same data dir)."""

    def __init__(self, tmp: Path, *extra: str, data_dir: Path | str | None = None,
                 on_host: bool = True, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.extra = ["--on-host", *extra] if on_host else list(extra)
        self.env = dict(env or {})
        self.data_dir = str(data_dir if data_dir is not None else tmp / "data")
        self.scratch = tmp / "scratch"
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self.port = 0
        self.grpc_port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Serve:
        env = {**os.environ, **FAST, "TMPDIR": str(self.scratch), **self.env}
        self.lines = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wfgen", "serve", "--port", "0", "--grpc-port", "0",
             "--data-dir", self.data_dir, *self.extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=env)
        ready = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line.rstrip("\n"))
                if line.startswith(("export WORKFLOWS_EMULATOR_GRPC_HOST=", "# no gRPC")):
                    ready.set()  # the last of the lines serve prints at start
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or self.proc.poll() is not None:
            self.proc.kill()
            raise RuntimeError("wfgen serve did not start:\n" + "\n".join(self.lines))
        text = "\n".join(self.lines)
        self.port = int(re.search(r"listening on http://127\.0\.0\.1:(\d+)", text).group(1))
        grpc = re.search(r"and 127\.0\.0\.1:(\d+) \(gRPC\)", text)
        self.grpc_port = int(grpc.group(1)) if grpc else 0
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def log(self) -> str:
        return "\n".join(self.lines)

    # -- clients ---------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A raw REST call; (status, JSON body)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def wait_execution(self, name: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status, execution = self.call("GET", f"/v1/{name}")
            assert status == 200, execution
            if execution["state"] not in ("ACTIVE", "QUEUED") or time.monotonic() > deadline:
                return execution
            time.sleep(0.1)

    def gcloud_env(self) -> dict[str, str]:
        config = self.tmp / "gcloud-config"
        config.mkdir(exist_ok=True)
        url = f"{self.url}/"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}
        env.update({
            "CLOUDSDK_CONFIG": str(config), "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
            "CLOUDSDK_CORE_PROJECT": PROJECT, "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "true", "CLOUDSDK_SURVEY_DISABLE_PROMPTS": "true",
            "CLOUDSDK_WORKFLOWS_LOCATION": LOCATION,
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_WORKFLOWS": url,
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_WORKFLOWEXECUTIONS": url,
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": url,
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDSCHEDULER": url,
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER": url,
        })
        return env

    def gcloud(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        assert GCLOUD, "gcloud is not installed"
        return subprocess.run([GCLOUD, *args], capture_output=True, text=True,
                              timeout=timeout, env=self.gcloud_env())
