"""Where serve's Cloud Storage keeps buckets and objects: metadata in one
SQLite database (storage.sqlite3: names sort as the service lists them, so a
prefix/delimiter page is one indexed range scan), contents as plain files
under blobs/. Every write streams to a temporary file while its MD5 and
CRC32C are computed, then takes its place in one step: a reader sees the old
object or the new one, never half of one, and memory stays bounded whatever
the size. Resumable uploads keep their bytes under uploads/ (they survive a
restart of serve, as a session URI does at Google)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import google_crc32c

CHUNK = 1 << 20  # bytes read or written at a time
SESSION_TTL_S = 7 * 24 * 3600
SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL, blob TEXT NOT NULL,
    PRIMARY KEY (bucket, name));
"""
Resource = dict[str, Any]


class Readable(Protocol):
    def read(self, size: int = -1) -> bytes: ...


@dataclass
class Written:
    """A finished temporary file: its size and checksums (base64, as the API shows them)."""

    path: Path
    size: int
    md5: str
    crc32c: str


class Hasher:
    """MD5 and CRC32C of bytes as they pass."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.crc = google_crc32c.Checksum()
        self.size = 0

    def update(self, data: bytes) -> None:
        self.md5.update(data)
        self.crc.update(data)
        self.size += len(data)

    def digests(self) -> tuple[str, str]:
        return (base64.b64encode(self.md5.digest()).decode(),
                base64.b64encode(self.crc.digest()).decode())


class ObjectStore:
    """Buckets and objects of one serve; `root` None keeps them in a temporary
    directory removed by close() (serve --data-dir :memory:)."""

    def __init__(self, root: Path | None) -> None:
        self._temporary = root is None
        self.root = Path(tempfile.mkdtemp(prefix="wfgen-storage-")) if root is None else root
        for sub in ("blobs", "uploads", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.root / "storage.sqlite3"),
                                   check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()
        self._generation = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)

    def next_generation(self) -> int:
        """Microseconds since the epoch, strictly increasing (the service's generations)."""
        with self._lock:
            self._generation = max(self._generation + 1, int(time.time() * 1_000_000))
            return self._generation

    # buckets

    def bucket(self, name: str) -> Resource | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM buckets WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def buckets(self, prefix: str, after: str, limit: int) -> list[Resource]:
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM buckets WHERE name > ? AND substr(name, 1, ?) = ? "
                "ORDER BY name LIMIT ?", (after, len(prefix), prefix, limit)).fetchall()
        return [json.loads(row[0]) for row in rows]

    def put_bucket(self, bucket: Resource) -> bool:
        """False: the name is taken."""
        with self._lock:
            try:
                self._db.execute("INSERT INTO buckets (name, data) VALUES (?, ?)",
                                 (bucket["name"], json.dumps(bucket)))
            except sqlite3.IntegrityError:
                return False
        return True

    def bucket_empty(self, name: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1",
                                    (name,)).fetchone() is None

    def delete_bucket(self, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM buckets WHERE name = ?", (name,))

    # objects

    def object(self, bucket: str, name: str) -> tuple[Resource, Path] | None:
        with self._lock:
            row = self._db.execute("SELECT data, blob FROM objects WHERE bucket = ? AND "
                                   "name = ?", (bucket, name)).fetchone()
        return (json.loads(row[0]), self.root / "blobs" / row[1]) if row else None

    def names(self, bucket: str, start: str, end: str | None, limit: int) -> list[Resource]:
        """Objects with start <= name (< end), in name order."""
        query = "SELECT data FROM objects WHERE bucket = ? AND name >= ?"
        args: list[Any] = [bucket, start]
        if end is not None:
            query += " AND name < ?"
            args.append(end)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY name LIMIT ?",
                                    (*args, limit)).fetchall()
        return [json.loads(row[0]) for row in rows]

    def commit(self, resource: Resource, written: Written) -> None:
        """Make `written` the content of resource's object (replacing any older one)."""
        blob = f"{resource['generation']}-{secrets.token_hex(8)}"
        os.replace(written.path, self.root / "blobs" / blob)
        with self._lock:
            old = self._db.execute("SELECT blob FROM objects WHERE bucket = ? AND name = ?",
                                   (resource["bucket"], resource["name"])).fetchone()
            self._db.execute("INSERT OR REPLACE INTO objects (bucket, name, data, blob) "
                             "VALUES (?, ?, ?, ?)", (resource["bucket"], resource["name"],
                                                     json.dumps(resource), blob))
        if old:
            (self.root / "blobs" / old[0]).unlink(missing_ok=True)

    def update(self, resource: Resource) -> None:
        """New metadata for an existing object (its content unchanged)."""
        with self._lock:
            self._db.execute("UPDATE objects SET data = ? WHERE bucket = ? AND name = ?",
                             (json.dumps(resource), resource["bucket"], resource["name"]))

    def delete(self, bucket: str, name: str) -> None:
        with self._lock:
            row = self._db.execute("SELECT blob FROM objects WHERE bucket = ? AND name = ?",
                                   (bucket, name)).fetchone()
            self._db.execute("DELETE FROM objects WHERE bucket = ? AND name = ?",
                             (bucket, name))
        if row:
            (self.root / "blobs" / row[0]).unlink(missing_ok=True)

    # writing content

    def write(self, sources: Iterator[Readable | Path], limit: int | None = None) -> Written:
        """Stream each source (a reader up to EOF, or a stored file) into one new
        temporary file; `limit` caps the total (ValueError past it)."""
        fd, name = tempfile.mkstemp(dir=self.root / "tmp")
        hasher = Hasher()
        try:
            with os.fdopen(fd, "wb") as out:
                for source in sources:
                    reader: Any = source.open("rb") if isinstance(source, Path) else source
                    try:
                        while data := reader.read(CHUNK):
                            hasher.update(data)
                            if limit is not None and hasher.size > limit:
                                raise ValueError(f"more than {limit} bytes")
                            out.write(data)
                    finally:
                        if isinstance(source, Path):
                            reader.close()
        except BaseException:
            os.unlink(name)
            raise
        md5, crc = hasher.digests()
        return Written(Path(name), hasher.size, md5, crc)

    def adopt(self, path: Path) -> Written:
        """A finished file as it stands (hashed in one read, not copied): a
        resumable upload's bytes become the object's by a rename."""
        hasher = Hasher()
        with path.open("rb") as src:
            while data := src.read(CHUNK):
                hasher.update(data)
        md5, crc = hasher.digests()
        return Written(path, hasher.size, md5, crc)

    def discard(self, written: Written) -> None:
        written.path.unlink(missing_ok=True)

    # resumable upload sessions

    def new_session(self, state: Resource) -> str:
        self._expire_sessions()
        upload_id = secrets.token_urlsafe(24)
        (self.root / "uploads" / f"{upload_id}.data").touch()
        self._save_session(upload_id, state)
        return upload_id

    def _expire_sessions(self) -> None:
        """Forget sessions untouched for a week (Google's session URIs expire then)."""
        cutoff = time.time() - SESSION_TTL_S
        for path in (self.root / "uploads").iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                pass  # another request removed it first

    def session(self, upload_id: str) -> tuple[Resource, Path] | None:
        if not upload_id.replace("-", "").replace("_", "").isalnum():
            return None
        meta = self.root / "uploads" / f"{upload_id}.json"
        try:
            return json.loads(meta.read_text()), self.root / "uploads" / f"{upload_id}.data"
        except (OSError, ValueError):
            return None

    def _save_session(self, upload_id: str, state: Resource) -> None:
        meta = self.root / "uploads" / f"{upload_id}.json"
        tmp = meta.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, meta)

    def append(self, upload_id: str, reader: Readable, count: int) -> int:
        """Add `count` bytes from reader to the session's data; its new size."""
        data_path = self.root / "uploads" / f"{upload_id}.data"
        with data_path.open("ab") as out:
            left = count
            while left:
                data = reader.read(min(CHUNK, left))
                if not data:
                    raise ConnectionError("the client closed the connection mid-body")
                out.write(data)
                left -= len(data)
            return out.tell()

    def end_session(self, upload_id: str) -> None:
        for suffix in (".json", ".data"):
            (self.root / "uploads" / f"{upload_id}{suffix}").unlink(missing_ok=True)


def read_range(path: Path, start: int, end: int) -> Iterator[bytes]:
    """Bytes start..end (inclusive) of a file, a chunk at a time."""
    with path.open("rb") as src:
        src.seek(start)
        left = end - start + 1
        while left > 0:
            data = src.read(min(CHUNK, left))
            if not data:
                return
            left -= len(data)
            yield data


def file_reader(path: Path) -> BinaryIO:
    return path.open("rb")
