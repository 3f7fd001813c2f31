"""Writing products: to stdout, or atomically to a file (never half-written)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from wfgen.errors import Location, UsageError


def write_output(text: str, path: str | None) -> None:
    """Write `text` to `path` via a temporary file and rename; stdout when None."""
    if not path or path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"directory {directory} does not exist", Location(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    except OSError as exc:
        raise UsageError(f"cannot write: {exc.strerror}", Location(path)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write: {exc.strerror}", Location(path)) from None
        raise
