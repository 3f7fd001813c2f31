"""Benchmark of the VM agent's own overhead (startup/startup.sh).

Two figures, each the median of several runs of the real script under bash
with real curl (and jq), the local metadata server and stand-ins that cost
nothing (bash one-liners that record the time and exit):

- boot -> `docker run`: from starting the script to the stand-in docker being
  asked to run the container (metadata reads, JSON decoding, pull, setup);
- container exit -> callback POST: from the container's exit to the report
  reaching the callback receiver (token fetch and parse, report JSON, POST).

The second is measured with toolbox's jq ready and with the jq-free fallback.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from wfgen.job.resources import startup_dir
from wfgen.local.metadata import MetadataServer

RUNS = 9

# Zero-cost stand-ins. docker records when `run` starts and when the
# "container" exits (at once) with bash's EPOCHREALTIME: no fork, no python.
STANDINS = {
    "docker": '[[ $1 == run ]] || exit 0\n'
              'printf "run %s\\n" "$EPOCHREALTIME" >>"$BENCH_RECORD"\n'
              '# with jq: exit once the background "install" is done, so jq is used\n'
              'while [[ $BENCH_JQ == 1 && ! -e $WFGEN_STATE_DIR/jq.ready ]]; do sleep 0.01; done\n'
              'printf "exit %s\\n" "$EPOCHREALTIME" >>"$BENCH_RECORD"\n',
    "toolbox": '[[ $1 == apt-get ]] && { [[ $BENCH_JQ == 1 ]]; exit; }\nexec "$@"\n',
    "cos-extensions": "exit 0\n",
    "docker-credential-gcr": "exit 0\n",
}


class _Receiver:
    """Accepts POSTs with a valid bearer token and notes when they arrive."""

    def __init__(self, md: MetadataServer) -> None:
        self.times: list[float] = []
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # small replies: no 40 ms delayed-ACK stalls

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = md.check_authorization(self.headers.get("Authorization"))
                if ok:
                    receiver.times.append(time.time())
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if ok:
                    receiver.event.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/callbacks/bench"


def _one_run(tmp: Path, md: MetadataServer, receiver: _Receiver, jq: bool) -> tuple[float, float]:
    state = tmp / "state"
    record = tmp / "record"
    subprocess.run(["rm", "-rf", str(state), str(record)], check=True)
    receiver.times.clear()
    receiver.event.clear()
    env = {
        "PATH": f"{tmp / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp),
        "GCE_METADATA_HOST": md.host,
        "WFGEN_STATE_DIR": str(state),
        "BENCH_RECORD": str(record),
        "BENCH_JQ": "1" if jq else "0",
    }
    t0 = time.time()
    with open(tmp / "log", "wb") as log:
        proc = subprocess.Popen(["bash", str(startup_dir() / "startup.sh")], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if not receiver.event.wait(30):
            raise RuntimeError("no callback; see " + str(tmp / "log"))
        proc.wait(30)
    marks = dict(line.split() for line in record.read_text().splitlines())
    return float(marks["run"]) - t0, receiver.times[0] - float(marks["exit"])


def measure(runs: int = RUNS) -> dict[str, list[float]]:
    """Seconds per run: boot->run, and exit->callback with and without jq."""
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as d:
        tmp = Path(d)
        (tmp / "bin").mkdir()
        for name, body in STANDINS.items():
            path = tmp / "bin" / name
            path.write_text("#!/bin/bash\n" + body)
            path.chmod(0o755)
        with MetadataServer("bench-vm", "us-central1-a", "bench") as md:
            receiver = _Receiver(md)
            for key, value in {
                "wfgen-image": "us-docker.pkg.dev/p/r/train:1",
                "wfgen-command": json.dumps(["python", "train.py"]),
                "wfgen-args": json.dumps(["--epochs", "90", "--lr", "0.1"]),
                "wfgen-env": json.dumps({"WANDB_MODE": "offline", "SEED": "1"}),
                "wfgen-accelerator-count": "0",
                "wfgen-callback-url": receiver.url,
            }.items():
                md.set_attribute(key, value)
            out: dict[str, list[float]] = {"boot": [], "exit_fallback": [], "exit_jq": []}
            for _ in range(runs):
                boot, exit_fb = _one_run(tmp, md, receiver, jq=False)
                out["boot"].append(boot)
                out["exit_fallback"].append(exit_fb)
                _, exit_jq = _one_run(tmp, md, receiver, jq=True)
                out["exit_jq"].append(exit_jq)
            receiver.httpd.shutdown()
            receiver.httpd.server_close()
    return out


def main() -> None:
    """Print the medians (ms) of the agent's overhead."""
    if os.name != "posix":
        print("bench_agent: needs bash, curl and a POSIX system")
        return
    results = measure()
    labels = {
        "boot": "boot -> docker run",
        "exit_fallback": "container exit -> callback POST (jq-free token parse)",
        "exit_jq": "container exit -> callback POST (jq from toolbox)",
    }
    print(f"VM agent overhead, median of {RUNS} runs (zero-cost stand-ins):")
    for key, label in labels.items():
        ms = [v * 1000 for v in results[key]]
        print(f"  {label:<56} {statistics.median(ms):7.1f} ms"
              f"  (min {min(ms):.1f}, max {max(ms):.1f})")


if __name__ == "__main__":
    main()
