"""A job's `workdir`: the folder beside the spec that the VM unpacks as the
container's working directory, so code edited since the last run runs without
an image rebuild.

Packed deterministically: the same tree gives the same bytes (entries sorted,
mtimes 0, owner root, modes 0644/0755, gzip without name or time), so the
archive's sha256 names it in `staging` (content-addressed: an unchanged tree
is already there and uploads nothing). Ignored: what the folder's
`.wfgenignore` and `.gitignore` say (git's own pattern rules, by pathspec),
and `.git/`. Regular files only: a symbolic link or a special file is left out
(a link may point outside the tree)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

IGNORE_FILES = (".gitignore", ".wfgenignore")
ALWAYS_IGNORED = (".git/",)
MAX_BYTES = 1 << 30  # a working directory of code, not a dataset (use inputs for those)
CONTAINER_PATH = "/workdir"


class WorkdirError(ValueError):
    """A workdir that cannot be packed (the message names the path)."""


@dataclass(frozen=True)
class Workdir:
    """A packed tree: where it is, its files, and its content-addressed name."""

    root: Path
    files: tuple[str, ...]  # POSIX paths below root, sorted
    sha256: str
    size: int  # bytes of the archive

    def uri(self, staging: str) -> str:
        return f"{staging.rstrip('/')}/workdir-{self.sha256}.tar.gz"


def _ignore_spec(root: Path) -> Any:
    import pathspec

    lines = list(ALWAYS_IGNORED)
    for name in IGNORE_FILES:
        path = root / name
        if path.is_file():
            lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


def collect(root: Path) -> tuple[str, ...]:
    """The files to pack: regular files below root that no ignore rule names."""
    if not root.is_dir():
        raise WorkdirError(f"{root} is not a folder")
    spec = _ignore_spec(root)
    found: list[str] = []
    for folder, dirs, names in os.walk(root):
        rel_dir = Path(folder).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        dirs[:] = [d for d in dirs if not spec.match_file(prefix + d + "/")
                   and not os.path.islink(os.path.join(folder, d))]
        for name in names:
            rel = prefix + name
            mode = os.lstat(os.path.join(folder, name)).st_mode
            if stat.S_ISREG(mode) and not spec.match_file(rel):
                found.append(rel)
    return tuple(sorted(found))


def _entry(name: str, size: int, executable: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.uid, info.gid, info.uname, info.gname = size, 0, 0, 0, "", ""
    info.mode = 0o755 if executable else 0o644
    return info


def write(root: Path, files: tuple[str, ...], out: IO[bytes]) -> None:
    """The archive of `files` (below root) as tar.gz into out."""
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for rel in files:
            path = root / rel
            with path.open("rb") as source:
                size = os.fstat(source.fileno()).st_size
                executable = bool(os.fstat(source.fileno()).st_mode & 0o111)
                tar.addfile(_entry(rel, size, executable), source)


class _Hashing(io.RawIOBase):
    """A sink that only hashes and counts what is written."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.hash.update(data)
        self.size += len(data)
        if self.size > MAX_BYTES:
            raise WorkdirError(f"the packed workdir is over {MAX_BYTES >> 20} MB: move data "
                               "into inputs, or ignore it in .wfgenignore")
        return len(data)


def pack_digest(root: Path) -> Workdir:
    """The tree's files and the sha256 of its archive, without writing it anywhere."""
    files = collect(root)
    sink = _Hashing()
    try:
        write(root, files, sink)  # type: ignore[arg-type]
    except OSError as exc:
        raise WorkdirError(f"{root}: {exc.strerror or exc}") from None
    return Workdir(root, files, sink.hash.hexdigest(), sink.size)


def prepare(spec: Any, staging: str | None = None) -> Workdir | None:
    """Pack (hash only) a job's workdir and name it in staging (`--staging`, else the
    spec's): spec.workdir_uri is what the workflow passes to the VM. None for a job
    without a workdir. A missing staging or an unpackable tree is a SpecError at the
    workdir field."""
    from wfgen.errors import SpecError, UsageError
    from wfgen.job.data_uris import parse_uri

    data = spec.data
    if staging:  # --staging: also where a split job's items past 128 KB go
        try:
            parse_uri(staging.rstrip("/") + "/", output=True)
        except ValueError as exc:
            raise UsageError(f"--staging: {exc}") from None
        data["staging"] = staging
    if not data.get("workdir"):
        return None
    staging = staging or data.get("staging")
    if not staging:
        raise SpecError("workdir needs a staging place: set staging: gs://BUCKET/PREFIX in "
                        "the spec, or pass --staging gs://BUCKET/PREFIX",
                        spec.location("workdir"))
    try:
        packed = pack_digest(Path(spec.path).parent / data["workdir"])
    except WorkdirError as exc:
        raise SpecError(f"workdir: {exc}", spec.location("workdir")) from None
    data["staging"] = staging
    spec.workdir_uri = packed.uri(staging)
    return packed
