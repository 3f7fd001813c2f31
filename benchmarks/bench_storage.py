"""Cloud Storage in `wfgen serve`: MB/s up and down, and serve's memory.

One serve (--data-dir in a temporary directory). Moved each way, by the VM's
transfer step (wfgen.backends.cloud_transfer: google-cloud-storage, parallel,
resumable, sliced, verified: what a local VM runs) and by the real
`gcloud storage cp` (where installed):

- 1 x 500 MB (BENCH_STORAGE_MB to change): one file output, one file input;
- 1,000 x 10 KB: one folder output and one folder input (the step's pool);
  gcloud with `cp -r` (its own parallelism).

Reported: MB/s for each, and serve's resident memory before and its peak
(VmHWM) after all of it. Goal: the peak grows by less than 50 MB while
500 MB goes up and down (bodies stream to and from disk)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BIG_MB = int(os.environ.get("BENCH_STORAGE_MB", "500"))
SMALL_COUNT, SMALL_BYTES = 1000, 10 * 1024


def rss_kb(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else 0


def start_serve(tmp: Path) -> tuple[subprocess.Popen[str], str, list[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "wfgen", "serve", "--port", "0",
                             "--grpc-port", "-1", "--data-dir", str(tmp / "data")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith("# no gRPC"):
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(60):
        proc.kill()
        raise RuntimeError("serve did not start:\n" + "\n".join(lines))
    url = next(line.split("=", 1)[1] for line in lines
               if line.startswith("export STORAGE_EMULATOR_HOST="))
    return proc, url, lines


def timed(label: str, nbytes: int, action) -> None:
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    print(f"  {label:<44} {nbytes / seconds / 1e6:8.1f} MB/s  ({seconds:.2f} s)", flush=True)


def gcloud_env(tmp: Path, lines: list[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}
    (tmp / "gcloud").mkdir(exist_ok=True)
    env.update({"CLOUDSDK_CONFIG": str(tmp / "gcloud"), "CLOUDSDK_CORE_PROJECT": "bench",
                "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
                "CLOUDSDK_CORE_DISABLE_PROMPTS": "true"})
    for line in lines:
        if line.startswith("export CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE="):
            env["CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE"] = line.split("=", 1)[1]
    return env


def main() -> None:
    gcloud = shutil.which("gcloud")
    with tempfile.TemporaryDirectory(prefix="wfgen-bench-storage-") as name:
        tmp = Path(name)
        proc, url, lines = start_serve(tmp)
        try:
            os.environ["STORAGE_EMULATOR_HOST"] = url
            from google.cloud import storage

            client = storage.Client(project="bench")
            client.create_bucket("bench")
            big = tmp / "big.bin"
            with big.open("wb") as out:
                for _ in range(BIG_MB):
                    out.write(os.urandom(1 << 20))
            small = tmp / "small"
            small.mkdir()
            for i in range(SMALL_COUNT):
                (small / f"f{i:04d}").write_bytes(os.urandom(SMALL_BYTES))
            big_bytes, small_total = BIG_MB << 20, SMALL_COUNT * SMALL_BYTES
            time.sleep(0.5)
            base = rss_kb(proc.pid, "VmRSS")
            print(f"  serve resident at start: {base / 1024:.1f} MB", flush=True)

            from wfgen.backends.cloud_transfer import WORKERS, Transfers

            step = Transfers(client)
            vm_up, vm_down = tmp / "vm-up", tmp / "vm-down"
            vm_up.mkdir()
            os.link(big, vm_up / "big")
            shutil.copytree(small, vm_up / "small")
            timed(f"VM transfer step up   1 x {BIG_MB} MB", big_bytes,
                  lambda: step.upload({"big": "gs://bench/vm/big.bin"}, vm_up))
            timed(f"VM transfer step down 1 x {BIG_MB} MB", big_bytes,
                  lambda: step.download({"big": "gs://bench/vm/big.bin"}, vm_down))
            timed(f"VM transfer step up   {SMALL_COUNT} x 10 KB ({WORKERS} workers)",
                  small_total, lambda: step.upload({"small": "gs://bench/vm/small/"}, vm_up))
            timed(f"VM transfer step down {SMALL_COUNT} x 10 KB ({WORKERS} workers)",
                  small_total,
                  lambda: step.download({"small": "gs://bench/vm/small/"}, vm_down))
            if gcloud:
                env = gcloud_env(tmp, lines)

                def cp(*args: str) -> None:
                    done = subprocess.run([gcloud, "storage", "cp", *args], env=env,
                                          capture_output=True, text=True)
                    if done.returncode:
                        errors = [x for x in done.stderr.splitlines() if "ERROR" in x]
                        raise RuntimeError(f"gcloud storage cp {' '.join(args)}: {errors[:5]}")

                timed(f"gcloud storage cp up   1 x {BIG_MB} MB", big_bytes,
                      lambda: cp(str(big), "gs://bench/gc/big.bin"))
                timed(f"gcloud storage cp down 1 x {BIG_MB} MB", big_bytes,
                      lambda: cp("gs://bench/gc/big.bin", str(tmp / "b2")))
                timed(f"gcloud storage cp -r up   {SMALL_COUNT} x 10 KB", small_total,
                      lambda: cp("-r", str(small), "gs://bench/gc/"))
                (tmp / "gdown").mkdir()
                timed(f"gcloud storage cp -r down {SMALL_COUNT} x 10 KB", small_total,
                      lambda: cp("-r", "gs://bench/gc/small", str(tmp / "gdown")))
            else:
                print("  gcloud is not installed: its figures are left out")
            peak = rss_kb(proc.pid, "VmHWM")
            print(f"  serve resident peak: {peak / 1024:.1f} MB "
                  f"(+{(peak - base) / 1024:.1f} MB over the start; goal < 50 MB)", flush=True)
        finally:
            proc.terminate()
            proc.wait(60)


if __name__ == "__main__":
    main()
