"""The dashboard's read-only queries over serve's store: each one indexed and
bounded (a page of rows, the few JSON fields a page shows via json_extract),
so a page costs the same with 5 or 5,000 executions."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from wfgen.server.store import Store

PAGE = 25  # executions per page of a workflow
HOME_WORKFLOWS = 100  # workflows listed on the home page (the rest counted)
RUNNING = 50  # running executions listed on the home page
REVISIONS = 20
STATES = ("ACTIVE", "SUCCEEDED", "FAILED", "CANCELLED")


@dataclass
class ExecutionRow:
    name: str
    state: str
    start: str
    end: str
    duration: str

    @property
    def id(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    @property
    def workflow(self) -> str:
        return self.name.split("/executions/")[0]


_EXECUTION_COLUMNS = ("name, state, json_extract(data, '$.startTime'), "
                      "json_extract(data, '$.endTime'), json_extract(data, '$.duration')")


def _rows(rows: list[tuple[Any, ...]]) -> list[ExecutionRow]:
    return [ExecutionRow(r[0], r[1], r[2] or "", r[3] or "", r[4] or "") for r in rows]


class PageTokenError(ValueError):
    """A ?page_token= that no page of ours gave."""


def page_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def token_seq(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode() + b"==").decode()
        kind, _, number = text.partition(":")
        if kind != "seq":
            raise ValueError(kind)
        return int(number)
    except ValueError:
        raise PageTokenError(token) from None


class Queries:
    """Reads for the dashboard's pages (never a write)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- home ------------------------------------------------------------------
    def counts(self, workflow: str | None = None) -> dict[str, int]:
        """Executions by state (of one workflow, or all)."""
        if workflow is None:
            rows = self.store.rows("SELECT state, COUNT(*) FROM executions GROUP BY state")
        else:
            rows = self.store.rows("SELECT state, COUNT(*) FROM executions WHERE workflow = ? "
                                   "GROUP BY state", workflow)
        return {state: count for state, count in rows}

    def workflows(self) -> tuple[list[dict[str, Any]], int]:
        """The first HOME_WORKFLOWS workflows by name, each with its last
        execution; and how many workflows there are in all."""
        total = self.store.rows("SELECT COUNT(*) FROM workflows")[0][0]
        rows = self.store.rows(
            "SELECT name, json_extract(data, '$.revisionId'), json_extract(data, '$.updateTime')"
            " FROM workflows ORDER BY name LIMIT ?", HOME_WORKFLOWS)
        out = []
        for name, revision, updated in rows:
            last = _rows(self.store.rows(
                f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE workflow = ? "
                "ORDER BY seq DESC LIMIT 1", name))
            out.append({"name": name, "revision": revision or "", "updated": updated or "",
                        "last": last[0] if last else None})
        return out, int(total)

    def running(self) -> list[ExecutionRow]:
        return _rows(self.store.rows(
            f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE state = 'ACTIVE' "
            "ORDER BY seq DESC LIMIT ?", RUNNING))

    # -- a workflow --------------------------------------------------------------
    def revisions(self, workflow: str) -> list[tuple[str, str]]:
        """(revision id, created) of the latest REVISIONS revisions, newest first."""
        rows = self.store.rows(
            "SELECT revision_id, json_extract(data, '$.revisionCreateTime') FROM revisions "
            "WHERE workflow = ? ORDER BY seq DESC LIMIT ?", workflow, REVISIONS)
        return [(r[0], r[1] or "") for r in rows]

    def executions(self, workflow: str, state: str | None, token: str | None
                   ) -> tuple[list[ExecutionRow], str]:
        """One page of a workflow's executions, newest first (keyset paging on the
        store's sequence number); and the next page's token ("" on the last)."""
        where, args = "workflow = ?", [workflow]
        if state:
            where += " AND state = ?"
            args.append(state)
        if token:
            where += " AND seq < ?"
            args.append(token_seq(token))
        rows = self.store.rows(f"SELECT seq, {_EXECUTION_COLUMNS} FROM executions "
                               f"WHERE {where} ORDER BY seq DESC LIMIT ?", *args, PAGE + 1)
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        return _rows([r[1:] for r in rows]), page_token(rows[-1][0]) if more else ""

    # -- a VM's execution ----------------------------------------------------------
    def execution_by_id(self, project: str, execution_id: str) -> str | None:
        """The full name of the execution a VM's wfgen-execution label names."""
        rows = self.store.rows("SELECT name FROM executions WHERE name LIKE ? ESCAPE '\\' "
                               "LIMIT 1", f"projects/{_like(project)}/locations/%/workflows/%/"
                                          f"executions/{_like(execution_id)}")
        return rows[0][0] if rows else None

    # -- other kinds ---------------------------------------------------------------
    def resources(self, kind: str) -> list[dict[str, Any]]:
        return self.store.list_resources(kind)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
