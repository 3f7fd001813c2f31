"""Reading YAML the way Cloud Workflows does, with bounds on hostile input.

Workflow definitions and job specs both come through `load`. It uses
ruamel.yaml's round-trip loader (which keeps line and column numbers) with:

- the YAML 1.2 core schema: null, bool, int, float, str, seq and map. Dates and
  timestamps (`2026-01-01`) stay strings, as the service keeps them; the YAML
  1.1 types `!!set`, `!!omap`, `!!pairs`, `!!binary` and local tags (`!foo`)
  are errors naming the line.
- a bound on alias and merge-key expansion: each use of an anchor adds the
  size of the node it names; past `MAX_ALIAS_NODES` extra nodes the document
  is refused at the alias that crossed the limit ("billion laughs"). Loading
  never copies, so the check is linear in the size of the text.
- a bound on nesting (`MAX_NESTING` levels), recursive anchors refused.
- scalars checked: integers must fit in 64 bits, strings may not hold lone
  UTF-16 surrogates (a JSON-style "\\ud800" escape; pairs are fine).

Errors are ruamel `MarkedYAMLError`s (with a 0-based mark), so every caller's
existing "invalid YAML at line N" handling reports them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import StreamMark

from wfgen.errors import Location, SpecError

MAX_ALIAS_NODES = 100_000  # nodes that aliases and merge keys may add
MAX_NESTING = 128  # levels of lists and maps
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSUPPORTED_TAGS = ("set", "omap", "pairs", "binary")


class _CoreConstructor(RoundTripConstructor):
    """Round-trip constructor limited to the YAML 1.2 core schema."""

    def construct_as_string(self, node: Any) -> str:
        return str(node.value)

    def construct_yaml_str(self, node: Any) -> Any:
        """A string, also when tagged !!str (round-trip mode keeps a TaggedScalar)."""
        return self.construct_scalar(node)

    def construct_refused(self, node: Any) -> None:
        tag = str(getattr(node.tag, "value", node.tag))
        short = tag.replace("tag:yaml.org,2002:", "!!")
        raise ConstructorError(None, None, f"the tag {short} is not part of the YAML 1.2 core "
                                           "schema that Cloud Workflows reads; remove it",
                               node.start_mark)


_CoreConstructor.add_constructor("tag:yaml.org,2002:str", _CoreConstructor.construct_yaml_str)
_CoreConstructor.add_constructor("tag:yaml.org,2002:timestamp",
                                 _CoreConstructor.construct_as_string)
for _tag in _UNSUPPORTED_TAGS:
    _CoreConstructor.add_constructor(f"tag:yaml.org,2002:{_tag}",
                                     _CoreConstructor.construct_refused)
_CoreConstructor.add_constructor(None, _CoreConstructor.construct_refused)


def _mark(node: Any, key: Any = None, index: int | None = None) -> StreamMark | None:
    """A 0-based mark for the position of a map value / list item (else the node)."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        if key is not None:
            line, col = lc.value(key)
        elif index is not None:
            line, col = lc.item(index)
        else:
            line, col = lc.line, lc.col
    except (KeyError, IndexError, TypeError, AttributeError):
        line, col = lc.line, lc.col
    return StreamMark("<yaml>", 0, line, col)


def _key_mark(node: Any, key: Any) -> StreamMark | None:
    try:
        line, col = node.lc.key(key)
    except (KeyError, TypeError, AttributeError):
        return _mark(node)
    return StreamMark("<yaml>", 0, line, col)


def _pairs_only(text: str) -> bool:
    """Surrogates only in pairs (a "\\ud83d\\ude00" escape: one character)?"""
    try:
        text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        return False
    return True


def _fail(message: str, mark: StreamMark | None) -> ConstructorError:
    return ConstructorError(None, None, message, mark)


class _Checker:
    """One pass over the loaded tree: expansion, nesting and scalar checks."""

    def __init__(self) -> None:
        self.sizes: dict[int, int] = {}  # id -> expanded node count, for finished containers
        self.active: set[int] = set()
        self.extra = 0

    def add_extra(self, n: int, mark: StreamMark | None) -> None:
        self.extra += n
        if self.extra > MAX_ALIAS_NODES:
            raise _fail(f"aliases and merge keys expand this document past {MAX_ALIAS_NODES} "
                        "nodes; write the data out or make it smaller", mark)

    def scalar(self, v: Any, mark: StreamMark | None) -> None:
        t = type(v)
        if t is str or isinstance(v, str):
            if _SURROGATE.search(v) and not _pairs_only(v):
                raise _fail("text is not valid Unicode (a lone UTF-16 surrogate)", mark)
        elif isinstance(v, int) and not isinstance(v, bool) and not (
                INT64_MIN <= v <= INT64_MAX):
            raise _fail(f"the integer {int(v)} does not fit in 64 bits (quote it to keep "
                            "it as text)", mark)

    def node(self, v: Any, depth: int, mark: StreamMark | None,
             use: StreamMark | None = None) -> int:
        """Expanded size of v; `mark` is where v is written, `use` where it is used (an
        alias's own position is that of its anchor, so errors name the user's line)."""
        if not isinstance(v, dict | list):
            self.scalar(v, mark)
            return 1
        nid = id(v)
        known = self.sizes.get(nid)
        if known is not None:  # a second use of an anchored node: an alias
            self.add_extra(known, use or mark)
            return known
        if nid in self.active:
            raise _fail("a recursive alias (a node that contains itself)", mark)
        if depth > MAX_NESTING:
            raise _fail(f"lists and maps nest more than {MAX_NESTING} levels deep", mark)
        self.active.add(nid)
        n = 1
        if isinstance(v, dict):
            own = getattr(v, "_ok", None)
            merged = len(v) - len(own) if own is not None else 0
            if merged > 0:
                self.add_extra(merged, _mark(v))
            for k, x in v.items():
                self.scalar(k, _mark(v))
                n += 1 + self.node(x, depth + 1, _mark(v, key=k), _key_mark(v, k))
        else:
            here = _mark(v)
            for i, x in enumerate(v):
                n += self.node(x, depth + 1, _mark(v, index=i), here)
        self.active.discard(nid)
        self.sizes[nid] = n
        return n


def load(text: str) -> Any:
    """Parse one YAML document (round-trip types, positions kept) and check it.

    Raises ruamel's MarkedYAMLError subclasses (with a problem_mark) for every
    refusal, so callers report the line."""
    yaml = YAML(typ="rt")
    yaml.Constructor = _CoreConstructor
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except RecursionError:
        raise _fail(f"lists and maps nest more than {MAX_NESTING} levels deep", None) from None
    if isinstance(tree, dict | list):
        _Checker().node(tree, 0, _mark(tree))
    else:
        _Checker().scalar(tree, StreamMark("<yaml>", 0, 0, 0))
    return tree


def read_source(path: str | Path) -> str:
    """A YAML file's text; unreadable files become a SpecError naming the file."""
    name = str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such file", Location(name)) from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a YAML file", Location(name)) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text (byte {exc.start})", Location(name)) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", Location(name)) from None
