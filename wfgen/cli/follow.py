"""Following an execution from the terminal, for every backend: progress
lines and the job's output on stderr, the result on stdout, stop signals
turned into a cancel, and the exit status of `docker run` (0 success, the
container's exit code when it ran and failed, 125 otherwise)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from wfgen.errors import EXIT_NOT_RUN


@dataclass
class Console:
    """Lifecycle lines and the VM's output, to stderr, one writer at a time."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False  # the reader went away (a closed pipe): go on without output

    def _write(self, text: str) -> None:
        with self.lock:
            if self.closed:
                return
            try:
                print(text, file=self.stream, flush=True)
            except (OSError, ValueError):  # never let a closed stderr stop the run
                self.closed = True

    def notify(self, message: str) -> None:
        from wfgen.cli.colour import paint, status_words

        stamp = paint(f"wfgen [{time.monotonic() - self.started:7.2f}s]", "dim", self.stream)
        self._write(f"{stamp} {status_words(message, self.stream)}")

    def output(self, vm: str, line: str) -> None:
        self._write(f"  {vm} | {line}")

    def log(self, entry: dict[str, Any]) -> None:
        """A `sys.log` entry of the workflow, as one readable line."""
        self.notify(log_line(entry))


def log_line(entry: dict[str, Any]) -> str:
    """A sys.log entry as one readable line: its message first, then the rest."""
    severity = entry.get("severity", "DEFAULT")
    payload = next((entry[k] for k in ("json", "data", "text") if k in entry), entry)
    if isinstance(payload, dict) and "message" in payload:
        rest = {k: v for k, v in payload.items() if k != "message"}
        extra = f" {json.dumps(rest, ensure_ascii=False, default=str)}" if rest else ""
        return f"{severity}: {payload['message']}{extra}"
    if isinstance(payload, str):
        return f"{severity}: {payload}"
    return f"{severity}: {json.dumps(payload, ensure_ascii=False, default=str)}"


def job_result(state: str, result: Any, error_payload: str | None) -> Any:
    """The job's result map: the returned value, or the map a failed job raised."""
    if state == "SUCCEEDED":
        return result
    try:
        error = json.loads(error_payload) if error_payload else None
    except ValueError:
        return None
    job = error.get("result") if isinstance(error, dict) else None
    return job if isinstance(job, dict) else None


def exit_status(state: str, job: Any) -> int:
    """0 success; the container's exit code when it ran and failed; else 125. A
    fan-out job (its result lists "tasks"): that of its first failed task by index."""
    if state == "SUCCEEDED":
        return 0
    if isinstance(job, dict) and isinstance(job.get("tasks"), list):
        failed = [t for t in job["tasks"] if isinstance(t, dict) and t.get("status") != "succeeded"]
        return exit_status("FAILED", failed[0]) if failed else EXIT_NOT_RUN
    if isinstance(job, dict) and job.get("status") == "failed":
        code = job.get("exit_code")
        if isinstance(code, int) and not isinstance(code, bool) and 0 < code < 256:
            return code
    return EXIT_NOT_RUN


def print_result(value: Any) -> None:
    """The product on stdout, indented; a reader that went away is not an error."""
    try:
        print(json.dumps(value, indent=2, ensure_ascii=False), flush=True)
    except BrokenPipeError:  # nobody reads the result; the exit status still tells
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


@contextlib.contextmanager
def stop_signals(on_repeat: Callable[[], None] | None = None) -> Iterator[list[int]]:
    """Turn SIGINT, SIGTERM and SIGHUP into a stop request (the list gets the
    signal number). The cleanup that follows always finishes; a second signal
    only calls `on_repeat` (e.g. shutdown scripts are cut short)."""
    stopped: list[int] = []
    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def handler(signum: int, _frame: Any) -> None:
        if not stopped:
            stopped.append(signum)
        elif on_repeat is not None:
            on_repeat()

    try:
        previous = {sig: signal.signal(sig, handler) for sig in watched}
    except ValueError:  # not the main thread: no signal handling
        yield stopped
        return
    try:
        yield stopped
    finally:
        for sig in watched:
            signal.signal(sig, previous[sig])
