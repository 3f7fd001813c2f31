"""Google's descriptions of the APIs serve answers: trimmed copies of their
Discovery documents (written by scripts/trim_discovery.py from the pinned
google-api-python-client; never edited by hand), loaded once, and the routes
they define: which documented method a request's HTTP method and path name.

A path no document describes (the callbacks, the /ui/ pages, wfgen's own test
hooks, an API whose document is not here yet) is not matched and passes on
unchecked: a new API is checked once its document is in this folder.

Cloud Storage adds two things: a method that takes a media body also answers
on the upload service's paths (/upload/..., /resumable/upload/...) and one that
gives media on /download/...; and its object names hold "/" (sent as %2F), so
its paths are matched as sent, still percent-encoded."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_PARAM = re.compile(r"\{(\+?)([^}]+)\}")


@dataclass(frozen=True)
class Document:
    """One API's trimmed Discovery document."""

    name: str  # "workflows", "compute", ...
    version: str
    source: str  # "google-api-python-client 2.202.0"
    system_parameters: dict[str, Any]  # alt, fields, prettyPrint ... (any method)
    schemas: dict[str, Any]
    encoded_paths: bool = False  # a path parameter may hold "/": match the path as sent

    def schema(self, ref: str) -> dict[str, Any]:
        return self.schemas.get(ref, {})


@dataclass(frozen=True)
class Method:
    """One documented method and the path pattern it answers on."""

    id: str  # "workflows.projects.locations.workflows.create"
    http_method: str
    pattern: re.Pattern[str]
    path_names: tuple[str, ...]  # the names of the pattern's groups, in order
    slashes: int  # how many "/" a path of this method has (-1: {+name} spans segments)
    parameters: dict[str, Any]
    request: str | None  # schema names
    response: str | None
    document: Document = field(repr=False, compare=False)
    media: str = ""  # "upload" / "download": the route of the media services

    @property
    def api(self) -> str:
        return self.document.name


def _pattern(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """`v1/projects/{projectsId}/x` -> a regex over the request path and its names;
    `{x}` is one path segment, `{+x}` may span several."""
    names: list[str] = []
    out, last = [], 0
    for match in _PARAM.finditer(template):
        out.append(re.escape(template[last:match.start()]))
        out.append("(.+?)" if match.group(1) else "([^/:]+)")
        names.append(match.group(2))
        last = match.end()
    out.append(re.escape(template[last:]))
    return re.compile("/" + "".join(out)), tuple(names)


def load(path: Path) -> list[Method]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    source = raw.get("x-wfgen-source", {})
    service = raw.get("servicePath", "")
    document = Document(raw["name"], raw["version"],
                        f"{source.get('package', '?')} {source.get('version', '?')}",
                        raw.get("parameters", {}), raw.get("schemas", {}),
                        encoded_paths=raw["name"] == "storage")
    methods = []
    for method_id, spec in raw["methods"].items():
        templates = [(service + spec.get("flatPath", spec["path"]), "")]
        templates += [(upload["path"].lstrip("/"), "upload")
                      for upload in spec.get("mediaUpload", {}).values()]
        if spec.get("useMediaDownloadService"):
            templates.append(("download/" + service + spec["path"], "download"))
        for template, media in templates:
            pattern, names = _pattern(template)
            slashes = -1 if "{+" in template else template.count("/") + 1
            methods.append(Method(method_id, spec["httpMethod"], pattern, names, slashes,
                                  spec.get("parameters", {}),
                                  (spec.get("request") or {}).get("$ref"),
                                  (spec.get("response") or {}).get("$ref"), document, media))
    return methods


class Routes:
    """Every documented method of every document in the folder, indexed by HTTP
    method and number of path segments (a request tries a handful of patterns)."""

    def __init__(self, methods: list[Method]) -> None:
        self.methods = methods
        self._index: dict[tuple[str, int], list[Method]] = {}
        self._spanning: list[Method] = []  # {+name} patterns: any segment count
        for method in methods:
            if method.slashes < 0:
                self._spanning.append(method)
            else:
                key = (method.http_method, method.slashes)
                self._index.setdefault(key, []).append(method)

    def find(self, http_method: str, path: str, raw_path: str = "") -> Method | None:
        """The documented method this request names, or None: `path` percent-decoded,
        `raw_path` as sent (for a document whose names may hold "/")."""
        raw_path = raw_path or path
        for method in self._index.get((http_method, path.count("/")), ()):
            if not method.document.encoded_paths and method.pattern.fullmatch(path):
                return method
        for method in self._index.get((http_method, raw_path.count("/")), ()):
            if method.document.encoded_paths and method.pattern.fullmatch(raw_path):
                return method
        for method in self._spanning:
            if method.http_method == http_method and method.pattern.fullmatch(
                    raw_path if method.document.encoded_paths else path):
                return method
        return None

    def method(self, method_id: str) -> Method | None:
        return next((m for m in self.methods if m.id == method_id), None)

    def sources(self) -> dict[str, str]:
        """{"workflows v1": "google-api-python-client 2.202.0", ...}"""
        return {f"{m.document.name} {m.document.version}": m.document.source
                for m in self.methods}


@cache
def routes(folder: Path = HERE) -> Routes:
    methods: list[Method] = []
    for path in sorted(folder.glob("*.json")):
        methods += load(path)
    return Routes(methods)
