"""`wfgen serve` under load: 20, 100 and 500 concurrent clients creating
executions for SECONDS each (keep-alive connections, one request in flight
per client), then the resident memory of serve once 70,000 executions exist.

Printed per level: requests, resets (connections the server dropped or
refused), errors (answers other than 200), p50/p95/p99 of one create, and the
rate. Goal: no resets, no errors, p99 under 2 s at 500 clients; RSS after
70,000 executions under 100 MB. The clients are asyncio coroutines (one
process, no threads), so the figures are serve's, not the client's.

    python benchmarks/bench_serve_load.py            # 20 s per level
    WFGEN_BENCH_SECONDS=5 WFGEN_BENCH_TOTAL=10000 python benchmarks/bench_serve_load.py
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECONDS = float(os.environ.get("WFGEN_BENCH_SECONDS", "20"))
LEVELS = [int(n) for n in os.environ.get("WFGEN_BENCH_LEVELS", "20,100,500").split(",")]
TOTAL = int(os.environ.get("WFGEN_BENCH_TOTAL", "70000"))  # executions for the RSS point
PARENT = "projects/bench/locations/us-central1"
WORKFLOW = "main:\n  steps:\n    - done:\n        return: 1\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(port: int, method: str, path: str, body: bytes = b"") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _answer(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 answer; its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next((int(line.split(":", 1)[1]) for line in lines
                   if line.lower().startswith("content-length:")), 0)
    await reader.readexactly(length)
    return status


async def _client(port: int, until: float, create: bytes, out: dict[str, list]) -> None:
    reader = writer = None
    while time.monotonic() < until:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.monotonic()
            writer.write(create)
            await writer.drain()
            status = await _answer(reader)
            out["latency"].append(time.monotonic() - started)
            if status != 200:
                out["errors"].append(status)
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
            out["resets"].append(type(exc).__name__)
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _level(port: int, clients: int, seconds: float) -> dict[str, list]:
    out: dict[str, list] = {"latency": [], "errors": [], "resets": []}
    create = _request(port, "POST", f"/v1/{PARENT}/workflows/load/executions", b"{}")
    until = time.monotonic() + seconds
    await asyncio.gather(*(_client(port, until, create, out) for _ in range(clients)))
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _call(port: int, method: str, path: str, body: dict | None = None) -> dict:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                 headers={"Content-Type": "application/json"})
    answer = json.loads(conn.getresponse().read() or b"{}")
    conn.close()
    return answer


def main() -> int:
    port = _free_port()
    with tempfile.TemporaryDirectory() as data:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wfgen", "serve", "--port", str(port), "--grpc-port", "-1",
             "--on-host", "--data-dir", data],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                if line.startswith(("export WORKFLOWS_EMULATOR_HOST", "# no gRPC")):
                    break
            _call(port, "POST", f"/v1/{PARENT}/workflows?workflowId=load",
                  {"sourceContents": WORKFLOW})
            made = 0
            print(f"{'clients':>8} {'requests':>9} {'resets':>7} {'errors':>7} {'p50 ms':>8} "
                  f"{'p95 ms':>8} {'p99 ms':>8} {'per s':>7}")
            for clients in LEVELS:
                out = asyncio.run(_level(port, clients, SECONDS))
                lat = out["latency"]
                made += len(lat) - len(out["errors"])
                print(f"{clients:>8} {len(lat):>9} {len(out['resets']):>7} "
                      f"{len(out['errors']):>7} {_pct(lat, .5) * 1e3:>8.1f} "
                      f"{_pct(lat, .95) * 1e3:>8.1f} {_pct(lat, .99) * 1e3:>8.1f} "
                      f"{len(lat) / SECONDS:>7.0f}", flush=True)
            while made < TOTAL:  # more executions, 50 clients at a time, for the memory point
                out = asyncio.run(_level(port, 50, 5.0))
                made += len(out["latency"]) - len(out["errors"])
            time.sleep(3)  # the last ones finish
            listed = _call(port, "GET", f"/v1/{PARENT}/workflows/load/executions?pageSize=1")
            print(f"RSS after {made} executions: {_rss_mb(proc.pid):.1f} MB "
                  f"(listing answers: {'executions' in listed})")
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
