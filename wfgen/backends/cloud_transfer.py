"""Moving a job's data between Cloud Storage and a VM's data directory, with
Google's Python client (google-cloud-storage): the transfer step the VM agent
runs before the container (inputs) and after it (outputs), here as the local
runtime's host equivalent.

Why the client and not hand-written HTTP: it streams to and from disk,
verifies CRC32C/MD5 on every download, retries 429/5xx with exponential
backoff (DEFAULT_RETRY), uploads big files resumably in chunks, and slices big
downloads into concurrent ranged reads (transfer_manager). Objects move in
parallel (a thread pool). The endpoint comes from STORAGE_EMULATOR_HOST (serve)
or is Google's; credentials are the client's default (a VM's service account
through the metadata server).

Local layout: an input or output NAME lives at DATA_DIR/NAME: a folder for a
folder or wildcard URI, a file for a file URI. A folder's objects keep their
path below the prefix. Errors name the URI and the HTTP status."""

from __future__ import annotations

import fnmatch
import json
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from wfgen.errors import WfgenError
from wfgen.job.data_uris import DataUri, parse_uri

WORKERS = 8
SLICE_AT = 64 << 20  # objects at least this big download as concurrent ranged slices
SLICE = 32 << 20
UPLOAD_CHUNK = 16 << 20  # a resumable upload's chunk: memory per upload stays this size
Progress = Callable[[str], None]


class TransferError(WfgenError):
    """A transfer that did not happen, naming the URI and the status."""


@dataclass
class Tally:
    """What moved: the result map's data.in / data.out."""

    objects: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failed: list[Path] = field(default_factory=list, repr=False)
    _started: float = field(default_factory=time.monotonic, repr=False)

    def add(self, size: int) -> None:
        self.objects += 1
        self.bytes += size

    def done(self) -> dict[str, Any]:
        self.seconds = round(time.monotonic() - self._started, 3)
        return {"objects": self.objects, "bytes": self.bytes, "seconds": self.seconds}


def _status(exc: Exception) -> str:
    code = getattr(exc, "code", None)
    return f"HTTP {code}" if code else type(exc).__name__


def _safe_relative(name: str, prefix: str) -> PurePosixPath | None:
    """An object's path below prefix, or None when it would leave the folder."""
    rel = PurePosixPath(name[len(prefix):])
    if not rel.parts or any(part in ("..", ".") for part in rel.parts) or rel.is_absolute():
        return None
    return rel


class Transfers:
    """Downloads and uploads of one job (one client, one pool)."""

    def __init__(self, client: Any = None, workers: int = WORKERS,
                 progress: Progress | None = None) -> None:
        if client is None:
            from google.cloud import storage

            client = storage.Client()
        self.client = client
        self.workers = workers
        self.progress = progress

    # downloads

    def download(self, inputs: dict[str, str], data_dir: Path) -> dict[str, Any]:
        """Every input to data_dir/NAME; the tally. A missing object or an empty
        folder or wildcard is a TransferError naming the URI (404)."""
        tally = Tally()
        jobs: list[tuple[Any, Path, str]] = []
        for name, text in inputs.items():
            uri = parse_uri(text)
            jobs += self._plan_download(uri, data_dir / name)
        self._run(jobs, self._download_one, tally)
        return tally.done()

    def _plan_download(self, uri: DataUri, target: Path) -> list[tuple[Any, Path, str]]:
        from google.api_core import exceptions

        bucket = self.client.bucket(uri.bucket)
        try:
            if uri.kind == "file":
                blob = bucket.get_blob(uri.path)
                if blob is None:
                    raise TransferError(f"input {uri.uri}: HTTP 404: no such object")
                return [(blob, target, uri.uri)]
            target.mkdir(parents=True, exist_ok=True)
            jobs = []
            for blob in self.client.list_blobs(uri.bucket, prefix=uri.prefix):
                if blob.name.endswith("/"):
                    continue  # a folder placeholder
                if uri.kind == "wildcard" and (
                        "/" in blob.name[len(uri.prefix):]
                        or not fnmatch.fnmatchcase(blob.name, uri.path)):
                    continue  # the wildcard's last part matches within one folder
                rel = _safe_relative(blob.name, uri.prefix)
                if rel is None:
                    raise TransferError(f"input {uri.uri}: object {blob.name!r} would land "
                                        "outside its folder")
                jobs.append((blob, target.joinpath(*rel.parts), f"gs://{uri.bucket}/"
                                                                 f"{blob.name}"))
        except exceptions.GoogleAPICallError as exc:
            raise TransferError(f"input {uri.uri}: {_status(exc)}: {exc.message}") from None
        if not jobs:
            raise TransferError(f"input {uri.uri}: HTTP 404: no objects match")
        return jobs

    def _download_one(self, blob: Any, target: Path, uri: str) -> int:
        from google.api_core import exceptions
        from google.cloud.storage import transfer_manager
        from google.cloud.storage.retry import DEFAULT_RETRY

        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".wfgen-partial")
        try:
            if (blob.size or 0) >= SLICE_AT:
                transfer_manager.download_chunks_concurrently(
                    blob, str(partial), chunk_size=SLICE, worker_type="thread",
                    max_workers=self.workers)
            else:
                blob.download_to_filename(str(partial), retry=DEFAULT_RETRY)
        except exceptions.GoogleAPICallError as exc:
            partial.unlink(missing_ok=True)
            raise TransferError(f"input {uri}: {_status(exc)}: {exc.message}") from None
        except Exception as exc:  # checksum mismatch, connection lost after the retries
            partial.unlink(missing_ok=True)
            raise TransferError(f"input {uri}: {type(exc).__name__}: {exc}") from None
        os.replace(partial, target)
        return target.stat().st_size

    # uploads

    def upload(self, outputs: dict[str, str], data_dir: Path,
               manifest: Path | None = None) -> dict[str, Any]:
        """Every output from data_dir/NAME (a folder: every file below it); the tally.
        Every upload is tried; the first failure is raised after all of them, naming
        the object. A missing output path uploads nothing. With a manifest (a JSON
        file of path -> [size, mtime_ns] of what was uploaded before: sync_every),
        only new or changed files go, and the manifest is updated."""
        tally = Tally()
        jobs: list[tuple[Any, Path, str]] = []
        seen = _read_manifest(manifest)
        for name, text in outputs.items():
            uri = parse_uri(text, output=True)
            source = data_dir / name
            bucket = self.client.bucket(uri.bucket)
            if uri.kind == "file":
                if source.is_file():
                    jobs.append((bucket.blob(uri.path, chunk_size=UPLOAD_CHUNK), source,
                                 uri.uri))
                continue
            for path in sorted(_files(source)):
                rel = path.relative_to(source).as_posix()
                jobs.append((bucket.blob(uri.path + rel, chunk_size=UPLOAD_CHUNK), path,
                             f"gs://{uri.bucket}/{uri.path}{rel}"))
        stamps = {str(job[1]): _stamp(job[1]) for job in jobs}
        if manifest is not None:
            jobs = [job for job in jobs if seen.get(str(job[1])) != stamps[str(job[1])]]
        try:
            self._run(jobs, self._upload_one, tally)
        finally:
            if manifest is not None:  # what went up (a failed one goes again next time)
                done = {str(job[1]) for job in jobs} - {str(p) for p in tally.failed}
                seen.update({k: v for k, v in stamps.items() if k in done})
                tmp = manifest.with_name(manifest.name + ".tmp")
                tmp.write_text(json.dumps(seen), encoding="utf-8")
                os.replace(tmp, manifest)
        return tally.done()

    def _upload_one(self, blob: Any, source: Path, uri: str) -> int:
        from google.api_core import exceptions
        from google.cloud.storage.retry import DEFAULT_RETRY

        try:
            # outputs are meant to replace what is there: a retried upload is safe
            blob.upload_from_filename(str(source), retry=DEFAULT_RETRY)
        except exceptions.GoogleAPICallError as exc:
            raise TransferError(f"output {uri}: {_status(exc)}: {exc.message}") from None
        except OSError as exc:
            raise TransferError(f"output {uri}: {type(exc).__name__}: {exc}") from None
        return source.stat().st_size

    # shared

    def _run(self, jobs: list[tuple[Any, Path, str]], one: Callable[..., int],
             tally: Tally) -> None:
        """Run every job on the pool; raise the first failure once all are done."""
        if not jobs:
            return
        failures: list[TransferError] = []
        with ThreadPoolExecutor(min(self.workers, len(jobs))) as pool:
            futures = [pool.submit(one, *job) for job in jobs]
            for job, future in zip(jobs, futures, strict=True):
                try:
                    tally.add(future.result())
                except TransferError as exc:
                    failures.append(exc)
                    tally.failed.append(job[1])
        if failures:
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            raise TransferError(f"{failures[0]}{more}")


def _stamp(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns]


def _read_manifest(manifest: Path | None) -> dict[str, list[int]]:
    """What a sync uploaded before (empty when there is none yet or it is unreadable)."""
    if manifest is None:
        return {}
    try:
        seen = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return seen if isinstance(seen, dict) else {}


def _files(root: Path) -> Iterable[Path]:
    """Regular files below root (symbolic links are not followed out of it)."""
    if not root.is_dir():
        return []
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def main(argv: list[str] | None = None) -> int:
    """`python -m wfgen.backends.cloud_transfer download|upload DATA_DIR JSON_MAP
    [MANIFEST]`: the step as a process (what the VM agent runs): the tally as one
    JSON line on stdout, exit 0; or the error naming URI and status on stderr, exit
    1 (2: usage). MANIFEST (uploads): only files changed since the last upload."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    usage = "usage: cloud_transfer download|upload DATA_DIR JSON_MAP [MANIFEST]"
    if not 3 <= len(args) <= (4 if args[:1] == ["upload"] else 3) \
            or args[0] not in ("download", "upload"):
        print(usage, file=sys.stderr)
        return 2
    try:
        mapping = json.loads(args[2])
        problem = None if isinstance(mapping, dict) else "JSON_MAP must be an object"
    except ValueError as exc:
        problem = f"JSON_MAP is not JSON: {exc}"
    if problem:
        print(f"cloud_transfer: {problem}", file=sys.stderr)
        return 2
    try:
        steps = Transfers()
        if args[0] == "download":
            tally = steps.download(mapping, Path(args[1]))
        else:
            tally = steps.upload(mapping, Path(args[1]), Path(args[3]) if len(args) > 3
                                 else None)
    except (TransferError, ValueError) as exc:
        print(f"cloud_transfer: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(tally))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
