"""Workflows callbacks on serve's own REST port: the local backend's callback
hub (wfgen.local.callbacks) with its endpoints answered by the loopback
server at the real path shape, /v1/projects/P/locations/L/workflows/W/
executions/E/callbacks/ID, instead of on a port of its own. A POST needs a
bearer token that a local VM's metadata server issued; others get 401.
Also the callbacks.list view of one execution."""

from __future__ import annotations

import json
from typing import Any

from wfgen.local.callbacks import CallbackServer
from wfgen.local.loopback import Request, Response


class CallbackHub(CallbackServer):
    """The callbacks of every execution, answered on serve's REST port."""

    def handle(self, request: Request) -> Response | None:
        if "/callbacks/" not in request.path or request.path not in self._endpoints:
            return None
        return super().handle(request)

    def forget(self, execution: str) -> None:
        """Drop the endpoints of an ended execution (nothing waits on them now)."""
        prefix = f"/v1/{execution}/callbacks/"
        with self._lock:
            for path in [p for p in self._endpoints if p.startswith(prefix)]:
                del self._endpoints[path]

    def list_for(self, execution: str) -> list[dict[str, Any]]:
        """The callbacks.list view of one execution's endpoints."""
        prefix = f"/v1/{execution}/callbacks/"
        with self._lock:
            found = [(p, e) for p, e in self._endpoints.items() if p.startswith(prefix)]
        return [{"name": path[len("/v1/"):], "method": e.method, "waiters": "0",
                 "availablePayloads": [_payload_text(x) for x in list(e.held.queue)]}
                for path, e in found]


def _payload_text(event: dict[str, Any]) -> str:
    return json.dumps(event.get("http_request", {}).get("body"), ensure_ascii=False)
