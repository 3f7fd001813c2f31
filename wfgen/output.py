"""Writing products: to stdout, or atomically to a file (never half-written).

A file is replaced by renaming a finished temporary file over it, so readers
never see half a workflow. A symlink is written through (its target is
replaced), an existing file keeps its mode, and anything that is not a regular
file (a device, a FIFO, a directory) is refused rather than replaced."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from wfgen.errors import Location, UsageError


def is_stdout(path: str | None) -> bool:
    return not path or path == "-"


def write_output(text: str, path: str | None) -> None:
    """Write `text` to `path` via a temporary file and rename; stdout when None or "-"."""
    if is_stdout(path):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    assert path is not None
    target = Path(os.path.realpath(path))  # through symlinks: replace what they point at
    mode = 0o644
    try:
        info = target.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise UsageError(f"cannot write: {exc.strerror}", Location(path)) from None
    if info is not None:
        if not stat.S_ISREG(info.st_mode):
            raise UsageError("is not a regular file; refusing to replace it (write to a file, "
                             "or leave out -o for stdout)", Location(path))
        mode = stat.S_IMODE(info.st_mode)
    if not target.parent.is_dir():
        raise UsageError(f"directory {target.parent} does not exist", Location(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise UsageError(f"cannot write: {exc.strerror}", Location(path)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write: {exc.strerror}", Location(path)) from None
        raise
