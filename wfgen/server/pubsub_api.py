"""Pub/Sub v1 topics in `wfgen serve`, as far as triggers need them: create,
get, delete, and `POST /v1/projects/P/topics/T:publish` (the REST body:
{"messages": [{"data": base64, "attributes": {...}}]} -> {"messageIds": [...]}).
A published message goes to the topic's subscriptions (subscriptions_api.py,
to pull from) and to Eventarc (every trigger on the topic starts one
execution) before publish answers."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from wfgen.job import schedule as rules
from wfgen.local.loopback import ApiError, Request, Response
from wfgen.server import wire
from wfgen.server.eventarc_api import TOPIC_KIND, TOPIC_RE
from wfgen.server.store import Resource, Store

MAX_MESSAGES = 1000  # per publish request, as the service allows
Deliver = Callable[[str, Resource], list[str]]


class PubsubRest:
    """Topics and publish."""

    def __init__(self, store: Store, deliver: Deliver) -> None:
        self.store = store
        self.deliver = deliver

    def handle(self, request: Request) -> Response | None:
        path = request.path
        if not path.startswith("/v1/projects/") or "/topics/" not in path:
            return None
        name, _, custom = path[len("/v1/"):].rstrip("/").partition(":")
        if not TOPIC_RE.fullmatch(name):
            raise ApiError(400, f"Invalid resource name given (name={name}). Refer to "
                                "https://cloud.google.com/pubsub/docs/pubsub-basics#resource_names")
        method = request.method
        if custom == "publish" and method == "POST":
            return Response.of_json(self.publish(name, request.json()))
        if custom:
            raise ApiError(404, f"Unknown method :{custom}")
        if method == "PUT":
            if self.store.get_resource(TOPIC_KIND, name) is not None:
                raise ApiError(409, "Resource already exists in the project (resource="
                                    f"{name.rsplit('/', 1)[-1]}).")
            topic = {"name": name}
            self.store.put_resource(TOPIC_KIND, topic, name.rsplit("/topics/")[0])
            return Response.of_json(topic)
        if method == "GET":
            return Response.of_json(self._topic(name))
        if method == "DELETE":
            self._topic(name)
            self.store.delete_resource(TOPIC_KIND, name)
            return Response.of_json({})
        raise ApiError(405, f"{method} is not allowed on {path}", code_name="UNIMPLEMENTED")

    def _topic(self, name: str) -> Resource:
        topic = self.store.get_resource(TOPIC_KIND, name)
        if topic is None:
            raise ApiError(404, f"Resource not found (resource={name.rsplit('/', 1)[-1]}).",
                           resource=name)
        return topic

    def publish(self, topic: str, body: Any) -> Resource:
        self._topic(topic)
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "The request contains no messages (messages: [{data, "
                                "attributes}])")
        if len(messages) > MAX_MESSAGES:
            raise ApiError(400, f"at most {MAX_MESSAGES} messages per publish request")
        ready = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise ApiError(400, f"messages[{i}] must be an object")
            data = message.get("data") or ""
            attributes = message.get("attributes") or {}
            try:
                base64.b64decode(str(data), validate=True)
            except (ValueError, binascii.Error):
                raise ApiError(400, f"messages[{i}].data must be base64") from None
            if not data and not attributes:
                raise ApiError(400, "Some messages are empty: a message needs data or "
                                    "attributes")
            if not isinstance(attributes, dict) or not all(
                    isinstance(v, str) for v in attributes.values()):
                raise ApiError(400, f"messages[{i}].attributes must map names to strings")
            ready.append((data, attributes))
        ids = []
        for data, attributes in ready:
            message_id = rules.message_id()
            published = wire.now()[1]
            message = {"data": data, "attributes": attributes, "messageId": message_id,
                       "message_id": message_id, "publishTime": published,
                       "publish_time": published}
            if not attributes:
                message.pop("attributes")
            self.deliver(topic, message)
            ids.append(message_id)
        return {"messageIds": ids}
