"""Cold-process start-up of the cloud commands against a local `wfgen serve`:
`wfgen status` (target < 1.5 s), `wfgen run NAME --detach`, and `wfgen run
JOB.yaml` up to its "execution ... created" line (deploy check included).
Network time is loopback; against Google Cloud add the API round trips."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5


def main() -> None:
    from tests.cloud.serve_cli import Serve, job

    with tempfile.TemporaryDirectory() as tmp:
        serve = Serve(Path(tmp)).start()
        try:
            _measure(serve, Path(tmp), job)
        finally:
            serve.stop()


def _timed(serve: Any, argv: list[str], until: str | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "wfgen", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=serve.env(), cwd=ROOT)
    if until:
        assert proc.stderr is not None
        for line in proc.stderr:
            if until in line:
                break
        elapsed = time.perf_counter() - started
        proc.communicate(timeout=300)
        return elapsed, ""
    out, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"wfgen {' '.join(argv)} failed: {err}")
    return time.perf_counter() - started, out


def _measure(serve: Any, tmp: Path, job: Any) -> None:
    spec = job(tmp / "bench.yaml", "bench", "echo hi")
    _timed(serve, ["deploy", spec])
    name = _timed(serve, ["run", spec, "--detach"])[1].strip()
    status = [_timed(serve, ["status", name])[0] for _ in range(RUNS)]
    detach = [_timed(serve, ["run", "bench", "--detach"])[0] for _ in range(RUNS)]
    follow = [_timed(serve, ["run", spec], until="created (projects/")[0] for _ in range(RUNS)]
    loaded = subprocess.run([sys.executable, "-X", "importtime", "-m", "wfgen", "status", name],
                            capture_output=True, text=True, env=serve.env(), cwd=ROOT).stderr
    compute = "google.cloud.compute_v1" in loaded
    figures = {"status_s": statistics.median(status), "run_detach_s": statistics.median(detach),
               "run_first_line_s": statistics.median(follow)}
    print(f"wfgen status (cold)                 median of {RUNS}: "
          f"{figures['status_s'] * 1000:7.1f} ms   (target < 1500 ms)")
    print(f"wfgen run NAME --detach (cold)      median of {RUNS}: "
          f"{figures['run_detach_s'] * 1000:7.1f} ms")
    print(f"wfgen run JOB.yaml to 'created'     median of {RUNS}: "
          f"{figures['run_first_line_s'] * 1000:7.1f} ms   (includes the unchanged-deploy check)")
    print(f"google.cloud.compute_v1 imported by status: {'YES (slow)' if compute else 'no'}")
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
