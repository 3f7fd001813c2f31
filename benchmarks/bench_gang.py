"""Multi-node jobs on the local runtime: the wall time from `wfgen run --local`
to every one of N containers started (each prints a line when it starts; the
time is taken when wfgen shows it), for N = 2, 8 and 32, the whole run's wall
time and its billed steps (at most 11 + 4·(N-1) on the success path).

One run each (32 local VMs are 32 startup scripts on this machine's cores)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (2, 8, 32)


def _spec(tmp: Path, nodes: int) -> Path:
    path = tmp / f"gang-{nodes}.yaml"
    path.write_text(json.dumps({
        "name": f"bench-gang-{nodes}", "nodes": nodes, "timeout": "1h", "heartbeat": "10m",
        "retries": 0, "container": {"image": "alpine",
                                    "script": 'echo "container-started $WFGEN_NODE_RANK"'}}))
    return path


def measure(nodes: int) -> tuple[float, float, int]:
    """(s to all containers started, s for the whole run, billed steps)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TMPDIR": tmp}
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "wfgen", "run", "--local", "--on-host",
                                 "--stats", str(_spec(Path(tmp), nodes))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=env)
        assert proc.stderr is not None
        seen: set[str] = set()
        all_started = 0.0
        steps = 0
        for line in proc.stderr:
            found = re.search(r"\| container-started (\d+)$", line.rstrip("\n"))
            if found:
                seen.add(found.group(1))
                if len(seen) == nodes:
                    all_started = time.perf_counter() - started
            if "billed steps:" in line:
                steps = int(line.split("=", 1)[1].split(";", 1)[0])
        code = proc.wait()
        total = time.perf_counter() - started
    if code != 0 or len(seen) != nodes:
        raise RuntimeError(f"{nodes} nodes: exit {code}, {len(seen)} containers started")
    return all_started, total, steps


def main() -> None:
    print(f"{'nodes':>5}  {'all started':>11}  {'whole run':>9}  {'billed steps':>12}  "
          "(budget 11 + 4(N-1))")
    for nodes in SIZES:
        first, total, steps = measure(nodes)
        print(f"{nodes:>5}  {first:>10.2f}s  {total:>8.2f}s  {steps:>12}  "
              f"({11 + 4 * (nodes - 1)})", flush=True)


if __name__ == "__main__":
    main()
