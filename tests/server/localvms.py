"""What the compute and logging API tests share: a loopback server over one
LocalCompute, VMs booted through the REST insert with the real startup and
shutdown scripts (the job runs as a host process), and the real gcloud."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wfgen.job.resources import startup_script
from wfgen.local.compute import LocalCompute
from wfgen.local.loopback import LoopbackServer, Request, Response
from wfgen.server.compute_api import ComputeApi
from wfgen.server.logging_api import LoggingApi

PROJECT = "demo"
ZONE = "us-central1-a"
FAST = {"WFGEN_BACKOFF_MS": "100", "WFGEN_BACKOFF_MAX_MS": "400", "WFGEN_STOP_DEADLINE": "3",
        "WFGEN_REPORT_DEADLINE": "10"}
GCLOUD = shutil.which("gcloud")


class Reports:
    """Stands in for the workflow's callback endpoint: keeps what VMs report."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict[str, Any]]] = {}

    def handle(self, request: Request) -> Response | None:
        if not request.path.startswith("/reports/"):
            return None
        name = request.path.rsplit("/", 1)[-1]
        self.received.setdefault(name, []).append(json.loads(request.body))
        return Response.of_json({})


class Bed:
    """One server, its compute, and helpers to call it."""

    def __init__(self, scratch: Path) -> None:
        self.compute = LocalCompute(vm_env=FAST, on_host=True)  # the job runs on the host
        self.reports = Reports()
        self.server = LoopbackServer([ComputeApi(self.compute), LoggingApi(self.compute),
                                      self.reports], log=lambda _line: None).start()
        self.url = self.server.url
        self.scratch = scratch
        self.gcloud_config = scratch / "gcloud"
        self.gcloud_config.mkdir()

    def close(self) -> None:
        self.compute.shutdown_all()
        self.server.stop()

    # -- REST --------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None, raw: bytes | None = None
             ) -> tuple[int, Any]:
        data = raw if raw is not None else (
            json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json",
                                                  **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                payload = response.read()
                kind = response.headers.get("Content-Type", "")
                status = response.status
        except urllib.error.HTTPError as exc:
            payload, kind, status = exc.read(), exc.headers.get("Content-Type", ""), exc.code
        if kind.startswith("application/json"):
            return status, json.loads(payload)
        return status, (kind, payload)

    def instance_body(self, name: str, script: str, **scheduling: Any) -> dict[str, Any]:
        """An insert body as the generated workflow sends it (the job: sh -c SCRIPT)."""
        metadata = {
            "startup-script": startup_script("startup.sh"),
            "shutdown-script": startup_script("shutdown.sh"),
            "google-logging-enabled": "true",
            "wfgen-image": "alpine:3.20",
            "wfgen-command": json.dumps(["sh", "-c", script]),
            "wfgen-args": "[]", "wfgen-env": "{}", "wfgen-accelerator-count": "0",
            "wfgen-callback-url": f"{self.url}/reports/{name}",
            "wfgen-job": "bed", "wfgen-attempt": "1",
        }
        return {
            "name": name, "machineType": f"zones/{ZONE}/machineTypes/e2-small",
            "labels": {"wfgen-job": "bed", "wfgen-execution": f"exec-{name}"},
            "scheduling": {"provisioningModel": "STANDARD", "automaticRestart": False,
                           "onHostMaintenance": "TERMINATE", **scheduling},
            "disks": [{"boot": True, "autoDelete": True, "initializeParams": {
                "sourceImage": "projects/cos-cloud/global/images/family/cos-stable",
                "diskSizeGb": "10"}}],
            "networkInterfaces": [{"network": "global/networks/default",
                                   "accessConfigs": [{"name": "External NAT",
                                                      "type": "ONE_TO_ONE_NAT"}]}],
            "metadata": {"items": [{"key": k, "value": v} for k, v in metadata.items()]},
        }

    def boot(self, name: str, script: str, **scheduling: Any) -> dict[str, Any]:
        status, op = self.call("POST", f"/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances",
                               self.instance_body(name, script, **scheduling))
        assert status == 200, op
        return op

    def console(self, name: str) -> str:
        return self.compute.console(PROJECT, ZONE, name)

    def gcloud(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        assert GCLOUD, "gcloud is not on PATH"
        env = {**os.environ, "CLOUDSDK_CONFIG": str(self.gcloud_config),
               "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": f"{self.url}/",
               "CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING": f"{self.url}/",
               "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true", "CLOUDSDK_CORE_PROJECT": PROJECT,
               "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
               "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
               "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
               "CLOUDSDK_SURVEY_DISABLE_PROMPTS": "true"}
        return subprocess.run([GCLOUD, *args], env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)


def eventually(check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    """Poll until check() is truthy (robust under load: generous deadline, no timing asserts)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)
