"""What `wfgen serve` remembers: workflows, their revisions, executions and
long-running operations, other APIs' resources, and Secret Manager's secrets
and versions (payloads in their own column, the file readable by its owner
only), in one SQLite database (stdlib sqlite3, WAL).

Resources are kept as the JSON the API returns, plus the few columns the
queries need (keys, order). One connection, one lock: SQLite calls take
microseconds and the GIL serialises the Python work anyway, so a pool would
add nothing but a second way to see half-written state. `":memory:"` keeps
everything in memory (nothing survives a restart)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS workflows (
    name TEXT PRIMARY KEY, parent TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revisions (
    workflow TEXT NOT NULL, revision_id TEXT NOT NULL, seq INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (workflow, revision_id));
CREATE TABLE IF NOT EXISTS executions (
    name TEXT PRIMARY KEY, workflow TEXT NOT NULL, seq INTEGER NOT NULL,
    state TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS executions_by_workflow ON executions (workflow, seq);
CREATE INDEX IF NOT EXISTS executions_by_state ON executions (state);
CREATE INDEX IF NOT EXISTS executions_by_workflow_state ON executions (workflow, state, seq);
CREATE TABLE IF NOT EXISTS operations (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL, name TEXT NOT NULL, parent TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY, parent TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS secret_versions (
    secret TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL, payload BLOB,
    PRIMARY KEY (secret, version));
"""

Resource = dict[str, Any]
RECENT = 4096  # executions whose JSON stays in memory too (reads skip SQLite)


def _dump(value: Resource) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Store:
    """The database of one `wfgen serve`; every method is thread-safe."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            os.chmod(self.path, 0o600)  # it holds Secret Manager payloads: the user's only
        self._lock = threading.RLock()
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM executions").fetchone()
        self._seq = int(row[0])
        # every workflow, and the most recent executions, also as JSON text in memory:
        # the hot reads (create, get) then never wait on SQLite
        self._workflows = dict(self._db.execute("SELECT name, data FROM workflows").fetchall())
        self._recent: OrderedDict[str, str] = OrderedDict()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, *args: Any) -> Resource | None:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return json.loads(row[0]) if row else None

    def _many(self, sql: str, *args: Any) -> list[Resource]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """A read-only query's rows (the dashboard's own queries, wfgen.server.ui)."""
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- workflows -------------------------------------------------------------
    def get_workflow(self, name: str) -> Resource | None:
        text = self._workflows.get(name)
        return json.loads(text) if text is not None else None

    def list_workflows(self, parent: str, offset: int, limit: int) -> list[Resource]:
        return self._many("SELECT data FROM workflows WHERE parent = ? ORDER BY name "
                          "LIMIT ? OFFSET ?", parent, limit, offset)

    def put_workflow(self, workflow: Resource, revision: Resource | None) -> None:
        """Save a workflow, with its new revision when the deploy made one."""
        name = workflow["name"]
        text = _dump(workflow)
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO workflows (name, parent, data) VALUES (?, ?, ?)",
                       (name, name.rsplit("/workflows/", 1)[0], text))
            self._workflows[name] = text
            if revision is not None:
                seq = int(revision["revisionId"].split("-", 1)[0])
                db.execute("INSERT OR REPLACE INTO revisions (workflow, revision_id, seq, data) "
                           "VALUES (?, ?, ?, ?)", (name, revision["revisionId"], seq,
                                                   _dump(revision)))

    def get_revision(self, workflow: str, revision_id: str) -> Resource | None:
        return self._one("SELECT data FROM revisions WHERE workflow = ? AND revision_id = ?",
                         workflow, revision_id)

    def list_revisions(self, workflow: str, offset: int, limit: int) -> list[Resource]:
        """Newest first."""
        return self._many("SELECT data FROM revisions WHERE workflow = ? ORDER BY seq DESC "
                          "LIMIT ? OFFSET ?", workflow, limit, offset)

    def last_revision_seq(self, workflow: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM revisions "
                                   "WHERE workflow = ?", (workflow,)).fetchone()
        return int(row[0])

    def delete_workflow(self, name: str) -> bool:
        """Delete a workflow with its revisions and executions (as the service does)."""
        with self._tx() as db:
            gone = db.execute("DELETE FROM workflows WHERE name = ?", (name,)).rowcount
            self._workflows.pop(name, None)
            prefix = name + "/executions/"
            for key in [k for k in self._recent if k.startswith(prefix)]:
                del self._recent[key]
            db.execute("DELETE FROM revisions WHERE workflow = ?", (name,))
            db.execute("DELETE FROM executions WHERE workflow = ?", (name,))
            db.execute("DELETE FROM resources WHERE parent = ?", (name,))  # their traces
        return gone > 0

    # -- executions ------------------------------------------------------------
    def _remember(self, name: str, text: str) -> None:
        self._recent[name] = text
        self._recent.move_to_end(name)
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)

    def add_execution(self, execution: Resource) -> None:
        name = execution["name"]
        text = _dump(execution)
        with self._lock:
            self._seq += 1
            self._db.execute("INSERT INTO executions (name, workflow, seq, state, data) "
                             "VALUES (?, ?, ?, ?, ?)", (name, name.split("/executions/")[0],
                                                        self._seq, execution["state"], text))
            self._remember(name, text)

    def update_execution(self, execution: Resource) -> None:
        text = _dump(execution)
        with self._lock:
            self._db.execute("UPDATE executions SET state = ?, data = ? WHERE name = ?",
                             (execution["state"], text, execution["name"]))
            self._remember(execution["name"], text)

    def get_execution(self, name: str) -> Resource | None:
        text = self._recent.get(name)
        if text is not None:
            return json.loads(text)
        return self._one("SELECT data FROM executions WHERE name = ?", name)

    def list_executions(self, workflow: str, offset: int, limit: int) -> list[Resource]:
        """Newest first."""
        return self._many("SELECT data FROM executions WHERE workflow = ? ORDER BY seq DESC "
                          "LIMIT ? OFFSET ?", workflow, limit, offset)

    def executions_in_state(self, state: str) -> list[Resource]:
        return self._many("SELECT data FROM executions WHERE state = ?", state)

    # -- operations ------------------------------------------------------------
    def put_operation(self, operation: Resource) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO operations (name, data) VALUES (?, ?)",
                             (operation["name"], _dump(operation)))

    def get_operation(self, name: str) -> Resource | None:
        return self._one("SELECT data FROM operations WHERE name = ?", name)

    # -- other APIs' resources (scheduler jobs, eventarc triggers, pub/sub topics)
    def put_resource(self, kind: str, resource: Resource, parent: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO resources (kind, name, parent, data) "
                             "VALUES (?, ?, ?, ?)", (kind, resource["name"], parent,
                                                     _dump(resource)))

    def get_resource(self, kind: str, name: str) -> Resource | None:
        return self._one("SELECT data FROM resources WHERE kind = ? AND name = ?", kind, name)

    def list_resources(self, kind: str, parent: str | None = None) -> list[Resource]:
        """By name; every one of the kind when parent is None."""
        if parent is None:
            return self._many("SELECT data FROM resources WHERE kind = ? ORDER BY name", kind)
        return self._many("SELECT data FROM resources WHERE kind = ? AND parent = ? "
                          "ORDER BY name", kind, parent)

    def delete_resource(self, kind: str, name: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM resources WHERE kind = ? AND name = ?",
                                    (kind, name)).rowcount > 0

    # -- Secret Manager: secrets, and their versions with the payload apart ------
    def put_secret(self, secret: Resource) -> bool:
        """Create a secret; False when one of that name exists."""
        name = secret["name"]
        with self._tx() as db:
            if db.execute("SELECT 1 FROM secrets WHERE name = ?", (name,)).fetchone():
                return False
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM secrets").fetchone()[0]
            db.execute("INSERT INTO secrets (name, parent, seq, data) VALUES (?, ?, ?, ?)",
                       (name, name.rsplit("/secrets/", 1)[0], seq, _dump(secret)))
        return True

    def get_secret(self, name: str) -> Resource | None:
        return self._one("SELECT data FROM secrets WHERE name = ?", name)

    def list_secrets(self, parent: str, offset: int, limit: int) -> list[Resource]:
        """Newest first, as the service lists them."""
        return self._many("SELECT data FROM secrets WHERE parent = ? ORDER BY seq DESC "
                          "LIMIT ? OFFSET ?", parent, limit, offset)

    def delete_secret(self, name: str) -> bool:
        """Delete a secret with every version (payloads included)."""
        with self._tx() as db:
            gone = db.execute("DELETE FROM secrets WHERE name = ?", (name,)).rowcount
            db.execute("DELETE FROM secret_versions WHERE secret = ?", (name,))
        return gone > 0

    def add_secret_version(self, secret: str, make: Callable[[int], Resource],
                           payload: bytes) -> Resource | None:
        """The secret's next version (1, 2, ...) made by `make(number)`, with its
        payload; None when the secret does not exist."""
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM secrets WHERE name = ?", (secret,)).fetchone():
                return None
            number = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM secret_versions "
                                "WHERE secret = ?", (secret,)).fetchone()[0]
            version = make(number)
            db.execute("INSERT INTO secret_versions (secret, version, data, payload) "
                       "VALUES (?, ?, ?, ?)", (secret, number, _dump(version), payload))
        return version

    def get_secret_version(self, secret: str, number: int | None
                           ) -> tuple[Resource, bytes | None] | None:
        """(version, payload) of a number, or of the newest ENABLED one when None."""
        with self._lock:
            if number is None:
                rows = self._db.execute(
                    "SELECT data, payload FROM secret_versions WHERE secret = ? "
                    "ORDER BY version DESC", (secret,)).fetchall()
                rows = [r for r in rows if json.loads(r[0]).get("state") == "ENABLED"][:1]
            else:
                rows = self._db.execute("SELECT data, payload FROM secret_versions WHERE "
                                        "secret = ? AND version = ?", (secret, number)).fetchall()
        if not rows:
            return None
        return json.loads(rows[0][0]), rows[0][1]

    def list_secret_versions(self, secret: str, offset: int, limit: int) -> list[Resource]:
        """Newest first."""
        return self._many("SELECT data FROM secret_versions WHERE secret = ? "
                          "ORDER BY version DESC LIMIT ? OFFSET ?", secret, limit, offset)

    def update_secret_version(self, secret: str, number: int, version: Resource,
                              *, drop_payload: bool = False) -> None:
        with self._lock:
            if drop_payload:
                self._db.execute("UPDATE secret_versions SET data = ?, payload = NULL "
                                 "WHERE secret = ? AND version = ?",
                                 (_dump(version), secret, number))
            else:
                self._db.execute("UPDATE secret_versions SET data = ? WHERE secret = ? AND "
                                 "version = ?", (_dump(version), secret, number))
