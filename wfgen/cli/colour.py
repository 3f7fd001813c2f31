"""Colour on a terminal: status words, errors and the lifecycle's timestamps,
so the eye finds the outcome in a long run. Off when the stream is not a TTY
(a pipe, a file, CI logs), when NO_COLOR is set to anything non-empty
(no-color.org), or when TERM=dumb: plain text is then byte for byte what it
was without colour."""

from __future__ import annotations

import os
import re
from typing import TextIO

RESET = "\033[0m"
STYLES = {"red": "\033[31m", "green": "\033[32m", "yellow": "\033[33m", "dim": "\033[2m",
          "bold_red": "\033[1;31m"}
# status words as the lifecycle, status and the result print them
WORDS = {"succeeded": "green", "SUCCEEDED": "green", "failed": "red", "FAILED": "red",
         "cancelled": "yellow", "CANCELLED": "yellow", "preempted": "yellow",
         "ACTIVE": "yellow", "error": "red"}
_WORD_RE = re.compile(r"\b(" + "|".join(WORDS) + r")\b")


def enabled(stream: TextIO) -> bool:
    """Whether to colour what goes to `stream`."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a real stream
        return False


def paint(text: str, style: str, stream: TextIO) -> str:
    """`text` in `style` when `stream` is coloured, else as it is."""
    return f"{STYLES[style]}{text}{RESET}" if enabled(stream) else text


def status_words(text: str, stream: TextIO) -> str:
    """Every status word of `text` in its colour (succeeded green, failed red...)."""
    if not enabled(stream):
        return text
    return _WORD_RE.sub(lambda m: f"{STYLES[WORDS[m.group(1)]]}{m.group(1)}{RESET}", text)
