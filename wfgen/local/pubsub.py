"""The Pub/Sub publish connector (`googleapis.pubsub.v1.projects.topics.publish`)
on the local runtime, for the job's notifications and any workflow that
publishes.

Where a message goes: to a `wfgen serve` when there is one (`endpoint`: serve
sets its own address; `wfgen run --local` takes WORKFLOWS_EMULATOR_HOST), as
`POST /v1/{topic}:publish` with the connector's `body` (PublishRequest:
{"messages": [{"data": base64, "attributes": {...}}]}), answering its
PublishResponse ({"messageIds": [...]}) or raising HttpError with serve's
status code, as the connector raises Google's. Without a serve the message is
not published anywhere: it is printed (data decoded when it is text), and the
call answers made-up message ids, so a workflow runs the same either way."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from wfgen.engine.errors import make_error

TOPIC_RE = re.compile(r"projects/[^/]+/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}")
NAME = "googleapis.pubsub.v1.projects.topics.publish"
Notify = Callable[[str], None]


def emulator_endpoint() -> str | None:
    """http://HOST:PORT of the serve that WORKFLOWS_EMULATOR_HOST names, or None."""
    host = os.environ.get("WORKFLOWS_EMULATOR_HOST", "").strip()
    if not host:
        return None
    return host.rstrip("/") if host.startswith(("http://", "https://")) else f"http://{host}"


class LocalPublisher:
    """The connector function (register it under NAME)."""

    def __init__(self, notify: Notify, endpoint: str | None = None) -> None:
        self.notify = notify
        self.endpoint = endpoint  # None: print instead of publishing

    def __call__(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
                 topic: Any, body: Any, **_: Any) -> dict[str, Any]:
        if not isinstance(topic, str) or not TOPIC_RE.fullmatch(topic):
            raise _http_error(400, f"Invalid resource name given (name={topic}): the topic "
                                   "must be projects/PROJECT/topics/TOPIC")
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            raise _http_error(400, "The request contains no messages (body: {messages: "
                                   "[{data, attributes}]})")
        if self.endpoint is None:
            return self._print(topic, messages)
        timeout = (connector_params or {}).get("timeout", 30)
        timeout = timeout if isinstance(timeout, int | float) and timeout > 0 else 30
        request = urllib.request.Request(
            f"{self.endpoint}/v1/{topic}:publish", method="POST",
            data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read() or b"{}")
            except ValueError:
                answer = {}
            error = answer.get("error") if isinstance(answer, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            raise _http_error(exc.code, str(message or exc.reason), answer) from None
        except (OSError, ValueError) as exc:
            raise make_error("ConnectionFailedError",
                             f"{NAME}: cannot reach {self.endpoint}: {exc}") from None

    def _print(self, topic: str, messages: list[Any]) -> dict[str, Any]:
        ids = []
        for message in messages:
            data = message.get("data", "") if isinstance(message, dict) else ""
            attributes = message.get("attributes", {}) if isinstance(message, dict) else {}
            try:
                text = base64.b64decode(str(data), validate=True).decode("utf-8")
            except (ValueError, binascii.Error):
                text = f"(base64) {data}"
            self.notify(f"Pub/Sub {topic} (not published: set WORKFLOWS_EMULATOR_HOST to "
                        f"deliver to a wfgen serve): attributes "
                        f"{json.dumps(attributes, sort_keys=True, ensure_ascii=False)} "
                        f"data {text}")
            ids.append(str(uuid.uuid4().int)[:16])
        return {"messageIds": ids}


def _http_error(status: int, message: str, body: Any = None) -> Exception:
    return make_error("HttpError", message, code=status,
                      body=body if body is not None else {"error": {"code": status,
                                                                    "message": message}},
                      headers={})
