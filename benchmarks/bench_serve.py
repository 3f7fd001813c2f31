"""`wfgen serve` throughput and latency, side by side with the PyPI peer
`workflows-emulator serve` (installed only in benchmarks/.venv-peer, as the
engine benchmark does), and the memory of serve after 5,000 executions.

A trivial two-step workflow; 20, then 100 concurrent clients (threads, one
keep-alive connection each), each doing create -> SUCCEEDED in a loop: for
wfgen a POST then GETs until the state is final (as gcloud and the client
libraries do; the first GET at once, then every 2 ms); for the peer one POST,
which answers with the result. Reported: executions per second, p50, p95 and
p99 latency of one create -> SUCCEEDED. Goals (issue 35): with 20 clients,
wfgen >= 8x the peer's rate and p50 < 10 ms. The clients run in this process
and share the machine with the server: on a loaded machine every figure,
the peer's too, is slower than on a quiet one."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# (clients, executions per client): wfgen runs 2,000 + 3,000 = 5,000 (the memory point)
WFGEN_LOADS = ((20, 100), (100, 30))
PEER_LOADS = ((20, 25), (100, 5))  # the peer is slower: 500 executions each
PARENT = "projects/bench/locations/us-central1"
WORKFLOW = """main:
  params: [args]
  steps:
    - build:
        assign:
          - greeting: ${"hello " + args.who}
    - done:
        return: ${greeting}
"""
ARGUMENT = json.dumps({"argument": json.dumps({"who": "bench"})}).encode()
# the peer binds the argument's keys to main's parameter names (not as the service does)
PEER_ARGUMENT = json.dumps({"argument": json.dumps({"args": {"who": "bench"}})}).encode()
HEADERS = {"Content-Type": "application/json"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _load(port: int, one: object, clients: int, per_client: int) -> dict[str, float]:
    """`clients` threads each running `per_client` create -> SUCCEEDED; the figures."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    go = threading.Event()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        go.wait()
        try:
            for _ in range(per_client):
                t = time.perf_counter()
                one(conn)  # type: ignore[operator]
                mine.append(time.perf_counter() - t)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed; first: {errors[0]}")
    return {"per_s": len(latencies) / elapsed, "p50_ms": _percentile(latencies, 0.5) * 1000,
            "p95_ms": _percentile(latencies, 0.95) * 1000,
            "p99_ms": _percentile(latencies, 0.99) * 1000, "n": len(latencies)}


def _request(conn: http.client.HTTPConnection, method: str, path: str,
             body: bytes | None = None) -> dict:
    conn.request(method, path, body=body, headers=HEADERS)
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
    return json.loads(data)


def wfgen_one(conn: http.client.HTTPConnection) -> None:
    created = _request(conn, "POST", f"/v1/{PARENT}/workflows/two-steps/executions", ARGUMENT)
    path = f"/v1/{created['name']}"
    state = created["state"]
    while state == "ACTIVE":
        execution = _request(conn, "GET", path)
        state = execution["state"]
        if state == "ACTIVE":
            time.sleep(0.002)
    if state != "SUCCEEDED" or json.loads(execution["result"]) != "hello bench":
        raise RuntimeError(f"execution ended {state}")


def peer_one(conn: http.client.HTTPConnection) -> None:
    result = _request(conn, "POST", f"/v1/{PARENT}/workflows/two-steps/executions",
                      PEER_ARGUMENT)
    if result != "hello bench":
        raise RuntimeError(f"peer answered {result!r}")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_wfgen(tmp: Path) -> dict[str, Any]:
    port = _free_port()
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen([sys.executable, "-m", "wfgen", "serve", "--port", str(port),
                             "--grpc-port", "-1", "--data-dir", str(tmp / "data"),
                             "--on-host"], stderr=subprocess.DEVNULL, env=env)
    try:
        _wait_port(port, proc)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        _request(conn, "POST", f"/v1/{PARENT}/workflows?workflowId=two-steps",
                 json.dumps({"sourceContents": WORKFLOW}).encode())
        wfgen_one(conn)  # warm up (first parse)
        idle = _rss_mb(proc.pid)
        figures: dict[str, Any] = {clients: _load(port, wfgen_one, clients, per)
                                   for clients, per in WFGEN_LOADS}
        listed = _request(conn, "GET", f"/v1/{PARENT}/workflows/two-steps/executions"
                                       "?pageSize=10000&view=BASIC")
        figures["held"] = len(listed["executions"])
        figures["rss_idle_mb"] = idle
        figures["rss_mb"] = _rss_mb(proc.pid)
        conn.close()
        return figures
    finally:
        proc.terminate()
        proc.wait(30)


def bench_peer(tmp: Path) -> dict[int, dict[str, float]] | None:
    sys.path.insert(0, str(HERE))
    from bench_engine import ensure_peer  # the same benchmark-only venv

    py = ensure_peer()
    if py is None:
        return None
    source = tmp / "two-steps.yaml"
    source.write_text(WORKFLOW)
    port = _free_port()
    proc = subprocess.Popen([str(py.parent / "workflows-emulator"), "--source", str(source),
                             "--env-file", str(tmp / "none.env"), "--loglevel", "WARNING",
                             "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    try:
        _wait_port(port, proc)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        peer_one(conn)
        conn.close()
        return {clients: _load(port, peer_one, clients, per) for clients, per in PEER_LOADS}
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="wfgen-bench-serve-") as tmp:
        ours = bench_wfgen(Path(tmp))
        peer = bench_peer(Path(tmp))
    print(f"create -> SUCCEEDED of a two-step workflow, concurrent keep-alive clients "
          f"(load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs):")
    for clients, _ in WFGEN_LOADS:
        rows = [("wfgen serve", ours[clients])]
        if peer:
            rows.append(("workflows-emulator", peer[clients]))
        for label, f in rows:
            print(f"  {clients:3} clients  {label:<19} {f['per_s']:7.1f} executions/s   "
                  f"p50 {f['p50_ms']:6.1f} ms   p95 {f['p95_ms']:6.1f} ms   "
                  f"p99 {f['p99_ms']:6.1f} ms   ({f['n']:.0f} executions)")
        if peer:
            ratio = ours[clients]["per_s"] / peer[clients]["per_s"]
            goal = "   (goal with 20 clients: >= 8x, p50 < 10 ms)" if clients == 20 else ""
            print(f"  {clients:3} clients  ratio {ratio:.1f}x{goal}")
    if not peer:
        print("  workflows-emulator: not installed (see bench_engine); no comparison")
    print(f"  wfgen serve RSS: {ours['rss_idle_mb']:.0f} MB idle, {ours['rss_mb']:.0f} MB after "
          f"{ours['held']:.0f} executions")
    return {"wfgen": ours, "peer": peer}

if __name__ == "__main__":
    main()
