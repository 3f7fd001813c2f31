"""What the local Compute Engine keeps: instance and operation records, serial
consoles, the API's legacy error shape (ComputeError), and the small helpers
that turn request fields (durations, times, URLs) into them. Split from
wfgen.local.compute, which holds the calls over these records."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wfgen.engine.errors import make_error
from wfgen.local.vm import LocalVM

Notify = Callable[[str], None]
Output = Callable[[str, str], None]
API = "https://www.googleapis.com/compute/v1"
NAME_RE = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
CONSOLE_BYTES = 1 << 20  # the serial port keeps the last 1 MB, as Compute Engine does
CONSOLE_LINES = 20000  # log lines kept per VM (Cloud Logging keeps them; memory here)
HISTORY = 2000  # deleted VMs whose consoles are kept for logs (a 1,000-task split job's)
OPERATIONS = 5000  # finished operations kept for get/wait
WAIT_MAX_S = 30.0  # zoneOperations.wait blocks up to this long (the service: ~2 min)


def _now() -> str:
    return _stamp(time.time())


def _stamp(when: float) -> str:
    """Compute Engine's own timestamp form: RFC 3339 with milliseconds and an offset."""
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")


def _new_id() -> str:
    """A uint64 id as the API gives them (a JSON string of 19 digits)."""
    return str(10**18 + secrets.randbelow(9 * 10**18))


def _fingerprint(value: Any) -> str:
    digest = hashlib.sha256(repr(value).encode()).digest()[:8]
    return base64.b64encode(digest).decode()


class ComputeError(Exception):
    """An API error, answered in the compute legacy shape
    `{"error": {"code", "message", "errors": [{"message", "domain", "reason"}]}}`."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.status, "message": self.message,
                          "errors": [{"message": self.message, "domain": "global",
                                      "reason": self.reason}]}}

    def workflow_error(self) -> Exception:
        """The engine's HttpError for a connector call (`code` is the HTTP status)."""
        return make_error("HttpError", self.message, code=self.status, body=self.body(),
                          headers={})


def not_found(resource: str) -> ComputeError:
    return ComputeError(404, f"The resource '{resource}' was not found", "notFound")


@dataclass
class ConsoleLine:
    """One line a VM printed: when, and its place among all VMs' lines (`seq`)."""

    seq: int
    time: float
    text: str


class SerialConsole:
    """Serial port 1 of one VM: bytes with absolute offsets (the last 1 MB kept),
    and the same output as timed lines for Cloud Logging."""

    def __init__(self, limit: int = CONSOLE_BYTES, max_lines: int = CONSOLE_LINES) -> None:
        self.limit = limit
        self._data = bytearray()
        self._base = 0  # absolute offset of _data[0]
        self.lines: deque[ConsoleLine] = deque(maxlen=max_lines)
        self._lock = threading.Lock()

    def append(self, seq: int, when: float, text: str) -> None:
        raw = (text + "\n").encode("utf-8", errors="replace")
        with self._lock:
            self._data += raw
            excess = len(self._data) - self.limit
            if excess > 0:
                del self._data[:excess]
                self._base += excess
            self.lines.append(ConsoleLine(seq, when, text))

    @property
    def next(self) -> int:
        return self._base + len(self._data)

    def read(self, start: int | None = None) -> tuple[str, int, int]:
        """(contents, start, next) as getSerialPortOutput answers: output from byte
        `start` on (a negative start: that many last bytes); a start older than the
        buffer is moved to the oldest byte kept."""
        with self._lock:
            end = self._base + len(self._data)
            begin = 0 if start is None else start
            if begin < 0:
                begin = max(end + begin, 0)
            begin = min(max(begin, self._base), end)
            chunk = bytes(self._data[begin - self._base:])
        return chunk.decode("utf-8", errors="replace"), begin, end

    def text(self) -> str:
        return self.read(0)[0]

    def snapshot(self) -> list[ConsoleLine]:
        with self._lock:
            return list(self.lines)


@dataclass
class Instance:
    """One instance as the API shows it, around its LocalVM."""

    project: str
    zone: str
    name: str
    id: str
    body: dict[str, Any]
    vm: LocalVM
    created: float
    console: SerialConsole
    deleted: float | None = None
    last_start: float | None = None
    last_stop: float | None = None
    timer: threading.Timer | None = None
    busy: bool = False  # a stop or delete is under way

    @property
    def metadata_fingerprint(self) -> str:
        """Of the metadata items, hashed once (nothing changes them after the
        insert, and a list of VMs shows every VM's startup script)."""
        cached = self.__dict__.get("_metadata_fingerprint")
        if cached is None:
            items = (self.body.get("metadata") or {}).get("items") or []
            cached = self.__dict__["_metadata_fingerprint"] = _fingerprint(items)
        return cached

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.project, self.zone, self.name)

    @property
    def resource(self) -> str:
        return f"projects/{self.project}/zones/{self.zone}/instances/{self.name}"

    @property
    def labels(self) -> dict[str, str]:
        labels = self.body.get("labels")
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


@dataclass
class Operation:
    """A zone operation; `done` is set when it is DONE."""

    resource: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)


def _link(project: str, zone: str, *rest: str) -> str:
    return "/".join((f"{API}/projects/{project}/zones/{zone}", *rest))


def _full_url(project: str, value: Any, default: str) -> str:
    """A partial resource URL (zones/Z/machineTypes/T) as the full URL the API returns."""
    text = str(value or default)
    if text.startswith(("http://", "https://")):
        return text
    if text.startswith("projects/"):
        return f"{API}/{text}"
    return f"{API}/projects/{project}/{text}"


def _duration_s(value: Any) -> float | None:
    """A protobuf Duration as JSON: {"seconds": "3600", "nanos": 0} or "3600s"."""
    if isinstance(value, dict):
        try:
            return float(value.get("seconds") or 0) + float(value.get("nanos") or 0) / 1e9
        except (TypeError, ValueError):
            return None
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            return None
    return None


def _parse_time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _task_of(body: dict[str, Any]) -> int | None:
    """The fan-out task of a VM (its wfgen-task label), or the rank of a multi-node
    job's VM (wfgen-node: faults name it with node=N); None for a single job."""
    labels = body.get("labels") or {}
    task = labels.get("wfgen-task", labels.get("wfgen-node"))
    return int(task) if isinstance(task, str) and task.isdigit() else None


