"""The gs:// URIs of a job's data (`inputs`, `outputs`), written once: what a
URI may be and what kind it is, so that the spec's check, the execution
argument's check and the transfer step read it the same way.

A URI ending in '/' is a folder (every object under that prefix,
recursively); a '*' in the last part is a wildcard (inputs only); otherwise
one object. The bucket follows Cloud Storage's naming rules
(wfgen.job.gcs_names), the object path may not hold '..' or '.' parts, empty
parts ('//'), or '*' anywhere but the last part."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from wfgen.job.gcs_names import bucket_problem, object_problem

Kind = Literal["folder", "file", "wildcard"]
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
WILDCARD_CHARS = "*?["


@dataclass(frozen=True)
class DataUri:
    """One checked gs:// URI."""

    bucket: str
    path: str  # the object name, the folder's prefix (ends in '/'), or the wildcard
    kind: Kind

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.path}"

    @property
    def prefix(self) -> str:
        """What a listing starts from: the folder, or the wildcard's fixed folder part."""
        if self.kind == "folder":
            return self.path
        if self.kind == "wildcard":
            return self.path.rpartition("/")[0] + "/" if "/" in self.path else ""
        return self.path


def parse_uri(text: object, *, output: bool = False) -> DataUri:
    """A checked DataUri; ValueError says what is wrong (without naming the field)."""
    if not isinstance(text, str):
        raise ValueError(f"must be a gs:// URI string, not {type(text).__name__}")
    if not text.startswith("gs://"):
        raise ValueError(f"{text!r} must start with gs://")
    bucket, slash, path = text[len("gs://"):].partition("/")
    if not bucket:
        raise ValueError(f"{text!r} names no bucket (gs://BUCKET/PATH)")
    problem = bucket_problem(bucket)
    if problem:
        raise ValueError(f"{text!r}: bucket {bucket!r}: {problem}")
    if not slash or not path:
        raise ValueError(f"{text!r} names only a bucket: add a folder (gs://{bucket}/PATH/) "
                         "or an object")
    parts = path.split("/")
    body = parts[:-1] if path.endswith("/") else parts
    if any(part in (".", "..") for part in body):
        raise ValueError(f"{text!r} may not hold '.' or '..' parts")
    if any(part == "" for part in body):
        raise ValueError(f"{text!r} may not hold an empty part ('//')")
    if any(c in part for part in parts[:-1] for c in WILDCARD_CHARS):
        raise ValueError(f"{text!r}: a wildcard may appear only in the last part")
    last = parts[-1]
    if any(c in last for c in WILDCARD_CHARS):
        if output:
            raise ValueError(f"{text!r}: an output cannot be a wildcard (name a folder "
                             "ending in / or one object)")
        kind: Kind = "wildcard"
    else:
        kind = "folder" if path.endswith("/") else "file"
    problem = object_problem(path.rstrip("/") or path)
    if problem:
        raise ValueError(f"{text!r}: {problem}")
    return DataUri(bucket, path, kind)


def check_data_map(value: object, *, output: bool) -> str | None:
    """The message for a bad `inputs`/`outputs` map (every bad entry named), or None."""
    if not isinstance(value, dict):
        return "must be a map of NAME: gs://BUCKET/PATH"
    problems = []
    for name, uri in value.items():
        if not isinstance(name, str) or not ENV_NAME_RE.fullmatch(name):
            problems.append(f"name {name!r} must be letters, digits and _ (an environment "
                            "variable name)")
            continue
        try:
            parse_uri(uri, output=output)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    return "; ".join(problems) or None
