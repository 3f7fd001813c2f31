"""Eventarc API v1 (`eventarc.googleapis.com`) triggers in `wfgen serve`:
create/get/list/patch/delete as the Python client and gcloud send them (the
mutations answer done long-running operations, read back through the shared
`.../operations/...` path), kept in the store.

serve supports what wfgen needs: Pub/Sub `messagePublished` events delivered
to a Workflows destination. `deliver` is called by the Pub/Sub front for each
published message: every trigger on that topic starts one execution of its
workflow whose argument is the CloudEvent, as Eventarc passes it."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from wfgen.job import schedule as rules
from wfgen.local.loopback import ApiError, Request, Response
from wfgen.server import wire
from wfgen.server.store import Resource, Store

KIND = "eventarc.trigger"
TOPIC_KIND = "pubsub.topic"
TRIGGER_ID_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")
TOPIC_RE = re.compile(r"projects/[^/]+/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}")
WORKFLOW_RE = re.compile(r"projects/[^/]+/locations/[^/]+/workflows/[A-Za-z][A-Za-z0-9_-]*")
TRIGGER_TYPE = "type.googleapis.com/google.cloud.eventarc.v1.Trigger"
METADATA_TYPE = "type.googleapis.com/google.cloud.eventarc.v1.OperationMetadata"
SETTABLE = ("eventFilters", "serviceAccount", "destination", "transport", "labels",
            "eventDataContentType")
SNAKE = {"event_filters": "eventFilters", "service_account": "serviceAccount",
         "event_data_content_type": "eventDataContentType"}
StartExecution = Callable[[str, Any], Resource]


class EventarcService:
    """Triggers, and the delivery of Pub/Sub messages to their workflows."""

    def __init__(self, store: Store, start_execution: StartExecution,
                 log: Callable[[str], None]) -> None:
        self.store = store
        self.start_execution = start_execution
        self.log = log

    def create(self, parent: str, trigger_id: str | None, body: Any,
               validate_only: bool = False) -> Resource:
        wire.split_parent(parent)
        if not trigger_id or not TRIGGER_ID_RE.fullmatch(trigger_id):
            raise ApiError(400, f"trigger_id {trigger_id!r} must start with a lowercase letter, "
                                "then up to 62 lowercase letters, digits or hyphens")
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received: the body must be a Trigger")
        name = f"{parent}/triggers/{trigger_id}"
        if self.store.get_resource(KIND, name) is not None:
            raise ApiError(409, f"Trigger {name} already exists", resource=name)
        body = {SNAKE.get(k, k): v for k, v in body.items()}
        stamp = wire.now()[1]
        trigger = self._checked({"name": name, "uid": str(uuid.uuid4()), "createTime": stamp,
                                 "updateTime": stamp,
                                 **{k: body[k] for k in SETTABLE if k in body}}, parent)
        if not validate_only:
            self._save(trigger)
        return self._operation(parent, name, "create", trigger)

    def get(self, name: str) -> Resource:
        trigger = self.store.get_resource(KIND, name)
        if trigger is None:
            raise ApiError(404, f"Resource '{name}' was not found", resource=name)
        return trigger

    def list(self, parent: str, size: Any = None, token: str | None = None) -> Resource:
        wire.split_parent(parent)
        return wire.paged("triggers", parent, size, token,
                          lambda offset, count: self.store.list_resources(KIND, parent)[
                              offset:offset + count], default=100)

    def patch(self, name: str, body: Any, mask: list[str] | None) -> Resource:
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received: the body must be a Trigger")
        body = {SNAKE.get(k, k): v for k, v in body.items()}
        trigger = dict(self.get(name))
        for path in mask or [k for k in SETTABLE if k in body]:
            field = SNAKE.get(path, path)
            if field not in SETTABLE:
                raise ApiError(400, f"update_mask path {path!r} cannot be updated")
            if field in body:
                trigger[field] = body[field]
            else:
                trigger.pop(field, None)
        trigger["updateTime"] = wire.now()[1]
        parent = name.rsplit("/triggers/", 1)[0]
        trigger = self._checked(trigger, parent)
        self._save(trigger)
        return self._operation(parent, name, "update", trigger)

    def delete(self, name: str, allow_missing: bool = False) -> Resource:
        trigger = self.store.get_resource(KIND, name)
        if trigger is None and not allow_missing:
            raise ApiError(404, f"Resource '{name}' was not found", resource=name)
        self.store.delete_resource(KIND, name)
        return self._operation(name.rsplit("/triggers/", 1)[0], name, "delete",
                               trigger or {"name": name})

    # -- checks ------------------------------------------------------------------
    def _checked(self, trigger: Resource, parent: str) -> Resource:
        filters = trigger.get("eventFilters")
        if not isinstance(filters, list) or not filters:
            raise ApiError(400, "trigger.event_filters is required (type=...)")
        kinds = [f.get("value") for f in filters
                 if isinstance(f, dict) and f.get("attribute") == "type"]
        if kinds != [rules.PUBSUB_EVENT]:
            raise ApiError(400, f"wfgen serve delivers only the event type "
                                f"{rules.PUBSUB_EVENT} (trigger.event_filters: {filters})",
                           code_name="UNIMPLEMENTED")
        destination = trigger.get("destination")
        if not isinstance(destination, dict) or not WORKFLOW_RE.fullmatch(
                str(destination.get("workflow", ""))):
            raise ApiError(400, "wfgen serve delivers only to a Workflows destination "
                                "(trigger.destination.workflow: projects/P/locations/L/"
                                f"workflows/W), not {destination}", code_name="UNIMPLEMENTED")
        project, location = wire.split_parent(parent)
        trigger_id = trigger["name"].rsplit("/", 1)[-1]
        transport = trigger.setdefault("transport", {}).setdefault("pubsub", {})
        topic = transport.get("topic") or (
            f"projects/{project}/topics/eventarc-{location}-{trigger_id}-{_suffix()}")
        if not TOPIC_RE.fullmatch(topic):
            raise ApiError(400, f"trigger.transport.pubsub.topic {topic!r} must be "
                                "projects/P/topics/T")
        transport["topic"] = topic
        transport.setdefault("subscription", f"projects/{project}/subscriptions/"
                                             f"eventarc-{location}-{trigger_id}-sub-{_suffix()}")
        if trigger.get("serviceAccount"):
            trigger["serviceAccount"] = str(trigger["serviceAccount"]).rsplit("/", 1)[-1]
        trigger["etag"] = uuid.uuid4().hex
        return trigger

    def _save(self, trigger: Resource) -> None:
        self.store.put_resource(KIND, trigger, trigger["name"].rsplit("/triggers/", 1)[0])
        topic = trigger["transport"]["pubsub"]["topic"]
        if self.store.get_resource(TOPIC_KIND, topic) is None:  # Eventarc's own topic
            self.store.put_resource(TOPIC_KIND, {"name": topic}, topic.rsplit("/topics/")[0])

    def _operation(self, parent: str, target: str, verb: str, trigger: Resource) -> Resource:
        stamp = wire.now()[1]
        operation = {
            "name": f"{parent}/operations/operation-{int(time.time() * 1000)}-"
                    f"{uuid.uuid4().hex[:12]}",
            "metadata": {"@type": METADATA_TYPE, "createTime": stamp, "endTime": stamp,
                         "target": target, "verb": verb, "apiVersion": "v1"},
            "done": True, "response": {"@type": TRIGGER_TYPE, **trigger}}
        self.store.put_operation(operation)
        return operation

    # -- delivery ----------------------------------------------------------------
    def deliver(self, topic: str, message: Resource) -> list[str]:
        """One execution per trigger on `topic` for this message; their names."""
        started = []
        for trigger in self.store.list_resources(KIND):
            transport = trigger["transport"]["pubsub"]
            if transport["topic"] != topic:
                continue
            event = rules.pubsub_cloudevent(topic, message, transport["subscription"],
                                            message["publishTime"])
            workflow = trigger["destination"]["workflow"]
            try:
                execution = self.start_execution(workflow, {"argument": _dump(event)})
            except ApiError as exc:
                self.log(f"wfgen serve: eventarc: {trigger['name']}: message "
                         f"{message['messageId']} not delivered to {workflow}: {exc.message}")
                continue
            started.append(execution["name"])
            self.log(f"wfgen serve: eventarc: {trigger['name']}: message {message['messageId']} "
                     f"started {execution['name']}")
        return started


def _suffix() -> str:
    return f"{uuid.uuid4().int % 1000:03d}"


def _dump(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class EventarcRest:
    """The REST paths of the Eventarc triggers API."""

    def __init__(self, service: EventarcService) -> None:
        self.service = service

    def handle(self, request: Request) -> Response | None:
        path = request.path
        if not path.startswith("/v1/projects/"):
            return None
        name = path[len("/v1/"):].rstrip("/")
        parts = name.split("/")
        if len(parts) < 5 or parts[2] != "locations" or parts[4] != "triggers":
            return None
        method = request.method
        validate_only = request.arg("validateOnly", "false") == "true"
        if len(parts) == 5:
            parent = "/".join(parts[:4])
            if method == "GET":
                return Response.of_json(self.service.list(
                    parent, request.arg("pageSize"), request.arg("pageToken")))
            if method == "POST":
                return Response.of_json(self.service.create(
                    parent, request.arg("triggerId"), request.json(), validate_only))
        elif len(parts) == 6:
            if method == "GET":
                return Response.of_json(self.service.get(name))
            if method == "PATCH":
                mask = request.arg("updateMask")
                paths = [p.strip() for p in mask.split(",") if p.strip()] if mask else None
                return Response.of_json(self.service.patch(name, request.json(), paths))
            if method == "DELETE":
                return Response.of_json(self.service.delete(
                    name, request.arg("allowMissing", "false") == "true"))
        else:
            return None
        raise ApiError(405, f"{method} is not allowed on {path}", code_name="UNIMPLEMENTED")
