"""How the dashboard writes values: times, durations, JSON, and long values
cut with a note (a 512 KB result or a 50 MB console is never sent whole)."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

VALUE_LIMIT = 16 * 1024  # characters of a result, argument or error shown
CONSOLE_LIMIT = 64 * 1024  # bytes of a serial console shown (its end)
METADATA_LIMIT = 4 * 1024  # characters of one metadata value shown
SECRET_WORDS = ("secret", "token", "password", "credential", "private-key")


@dataclass
class Cut:
    """A long text, cut: what is shown, and how long the whole was."""

    text: str
    total: int
    cut: bool

    @property
    def note(self) -> str:
        return f"cut: showing {len(self.text):,} of {self.total:,} characters" if self.cut else ""


def cut_head(text: str, limit: int = VALUE_LIMIT) -> Cut:
    return Cut(text[:limit], len(text), len(text) > limit)


def cut_tail(text: str, limit: int = CONSOLE_LIMIT) -> Cut:
    return Cut(text[-limit:] if len(text) > limit else text, len(text), len(text) > limit)


def parse_time(text: str) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def when(text: str | float | None) -> str:
    """A timestamp as `2026-12-07 06:50:01` (UTC), "" for none."""
    t = parse_time(text) if isinstance(text, str) else text
    if t is None:
        return ""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def ago(text: str | None, now: float | None = None) -> str:
    t = parse_time(text or "")
    if t is None:
        return ""
    return took(max(0.0, (now or time.time()) - t)) + " ago"


def took(seconds: float | str | None) -> str:
    """A duration as `850 ms`, `12.3 s`, `4 m 05 s`, `2 h 03 m`, `3 d 04 h`."""
    if isinstance(seconds, str):
        try:
            seconds = float(seconds.removesuffix("s"))
        except ValueError:
            return seconds
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} m {whole % 60:02d} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} m"
    return f"{whole // 86400} d {whole % 86400 // 3600:02d} h"


def running_for(start: str, end: str, duration: str) -> str:
    """An execution's duration: the service's, or so far while it runs."""
    if duration:
        return took(duration)
    t = parse_time(start)
    if t is None or end:
        return ""
    return took(time.time() - t)


def json_text(text: str | None) -> Cut:
    """A JSON string (an argument, a result) indented when short enough to
    parse cheaply; else its raw text, cut."""
    if text is None:
        return Cut("", 0, False)
    if len(text) <= VALUE_LIMIT:
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return cut_head(text)


def loads(text: str | None) -> Any:
    if not text or len(text) > 1 << 20:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def short(name: str) -> str:
    """The last segment of a resource name or URL."""
    return name.rstrip("/").rsplit("/", 1)[-1]


def is_secret(key: str) -> bool:
    """Metadata keys whose values the dashboard never shows."""
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


FILTERS = {"when": when, "ago": ago, "took": took, "short": short}
