"""serve's ChildRunner: a workflow's child executions (the Workflow Executions
connector) go through serve's own Executions API, so they are stored, listed by
`gcloud workflows executions list` and cancelled like any other."""

from __future__ import annotations

from typing import Any

from wfgen.backends.child_executions import NotFound, http_error
from wfgen.local.loopback import ApiError
from wfgen.server.executions_api import ExecutionsService


class ServeChildren:
    """The connector's create/get/cancel/wait over an ExecutionsService."""

    def __init__(self, executions: ExecutionsService) -> None:
        self.executions = executions

    def create(self, parent: str, argument_text: str | None) -> dict[str, Any]:
        body = {} if argument_text is None else {"argument": argument_text}
        try:
            return self.executions.create(parent, body)
        except ApiError as exc:
            if exc.status == 404:
                raise NotFound(exc.message) from None
            raise http_error(exc.status, exc.message) from None

    def get(self, name: str) -> dict[str, Any]:
        try:
            return self.executions.get(name)
        except ApiError as exc:
            raise NotFound(exc.message) from None

    def cancel(self, name: str) -> dict[str, Any]:
        try:
            return self.executions.cancel(name)
        except ApiError as exc:
            if exc.status == 404:
                raise NotFound(exc.message) from None
            raise http_error(exc.status, exc.message) from None

    def wait(self, name: str, seconds: float) -> dict[str, Any]:
        self.executions.wait_ended(name, seconds)
        return self.get(name)
