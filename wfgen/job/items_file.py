"""`tasks.items_file`: work items as JSON Lines in a file beside the job spec,
for item lists too long to keep in the spec. Each non-blank line is one item: a
JSON value, or else the line itself as a string. A mistake names the items file
and its line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wfgen.errors import Location, SpecError
from wfgen.job.rules import MAX_TASKS

MAX_ITEMS_FILE_BYTES = 64 * 1024 * 1024


def items_path(spec_path: str, name: str) -> Path:
    """The items file named in a spec: relative to the spec's folder, inside it."""
    base = Path(spec_path).parent if spec_path and not spec_path.startswith("<") else Path(".")
    path = (base / name).resolve()
    if Path(name).is_absolute() or not path.is_relative_to(base.resolve()):
        raise ValueError("must name a file in the spec's folder (a relative path, no ..)")
    return path


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_items_file(spec_path: str, name: str, where: Location) -> list[Any]:
    """The items of `name`, or a SpecError at `where` (the spec's field) or at the
    items file's own line."""
    try:
        path = items_path(spec_path, name)
        if path.stat().st_size > MAX_ITEMS_FILE_BYTES:
            raise ValueError(f"is over {MAX_ITEMS_FILE_BYTES // (1024 * 1024)} MB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"items file {name!r} not found beside the spec", where) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"items file {name!r} is not UTF-8 text (byte {exc.start})",
                        where) from None
    except (OSError, ValueError) as exc:
        raise SpecError(f"items file {name!r}: {getattr(exc, 'strerror', None) or exc}",
                        where) from None
    items: list[Any] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        at = Location(str(path), number, 1, "tasks.items_file")
        if "\x00" in line:
            raise SpecError("an item may not contain the NUL character", at)
        try:
            item = json.loads(line, parse_constant=_not_json)
        except ValueError:
            item = line
        if "\\u0000" in line and "\x00" in json.dumps(item, ensure_ascii=False):
            raise SpecError("an item may not contain the NUL character", at)
        items.append(item)
        if len(items) > MAX_TASKS:
            raise SpecError(f"more than {MAX_TASKS} items (the most tasks a job may have)", at)
    if not items:
        raise SpecError(f"items file {name!r} holds no items", where)
    return items
