"""Pub/Sub v1 pull subscriptions in `wfgen serve`, so that a user (and the
tests) read what a workflow published the way they would on Google:
`gcloud pubsub subscriptions create S --topic T`, then
`gcloud pubsub subscriptions pull S --auto-ack`.

The wire shapes follow the `pubsub v1` Discovery document (google-api-python-
client 2.202.0, `pubsub.v1.json`):

- create `PUT /v1/projects/P/subscriptions/S`, body Subscription (gcloud sends
  `{"name", "topic"}` plus the flags given) -> Subscription with Google's
  defaults filled in (ackDeadlineSeconds 10, messageRetentionDuration
  "604800s", expirationPolicy.ttl "2678400s", pushConfig {}, state ACTIVE);
- get, delete (-> {}), patch (`{"subscription": {...}, "updateMask": "a,b"}`),
  list `GET /v1/projects/P/subscriptions` and
  `GET /v1/projects/P/topics/T/subscriptions` (names only), paged;
- `:pull` `{"maxMessages": N, "returnImmediately": bool}` ->
  `{"receivedMessages": [{"ackId", "message": {"data", "attributes",
  "messageId", "publishTime"}}]}`, or `{}` when there is nothing; without
  returnImmediately the call waits for a message up to the client's
  `X-Server-Timeout` (gcloud sends 20) or 10 s;
- `:acknowledge` `{"ackIds": [...]}` and `:modifyAckDeadline`
  `{"ackIds": [...], "ackDeadlineSeconds": 0..600}` -> {}.

A subscription receives the messages published to its topic after it was
created (at least once: an unacknowledged message comes back after its ack
deadline; 0 through modifyAckDeadline gives it back at once). Messages and
subscriptions live in the store, so they survive a restart; leases do not
(after a restart every unacknowledged message may be pulled again, which
at-least-once delivery allows). Push, BigQuery and Cloud Storage delivery,
filters, dead-letter topics, seek and snapshots are not served: a request
that asks for them is refused as UNIMPLEMENTED rather than half-honoured."""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from typing import Any

from wfgen.local.loopback import ApiError, Request, Response
from wfgen.server import wire
from wfgen.server.eventarc_api import TOPIC_KIND, TOPIC_RE
from wfgen.server.store import Resource, Store

KIND = "pubsub.subscription"
MESSAGE_KIND = "pubsub.message"
NAME_RE = re.compile(r"projects/([^/]+)/subscriptions/([A-Za-z][A-Za-z0-9._~+%-]{2,254})")
DEFAULT_ACK_DEADLINE = 10
MAX_ACK_DEADLINE = 600
DEFAULT_RETENTION = 7 * 86400
MIN_RETENTION, MAX_RETENTION = 600, 31 * 86400
DEFAULT_TTL = 31 * 86400
MAX_PULL = 1000  # messages one pull returns at most
PULL_WAIT_S = 10.0  # a pull that may wait, without X-Server-Timeout
MAX_PULL_WAIT_S = 30.0
# Subscription fields serve keeps and honours (or that change nothing here).
SETTABLE = ("ackDeadlineSeconds", "labels", "messageRetentionDuration", "retainAckedMessages",
            "expirationPolicy", "enableMessageOrdering", "enableExactlyOnceDelivery",
            "retryPolicy", "detached")
UNSERVED = ("pushConfig", "bigqueryConfig", "cloudStorageConfig", "filter", "deadLetterPolicy",
            "messageTransforms")
OUTPUT_ONLY = ("state", "topicMessageRetentionDuration", "analyticsHubSubscriptionInfo")
FIELDS = {"name", "topic", "tags", *SETTABLE, *UNSERVED, *OUTPUT_ONLY}
SNAKE = {"ack_deadline_seconds": "ackDeadlineSeconds",
         "message_retention_duration": "messageRetentionDuration",
         "retain_acked_messages": "retainAckedMessages", "expiration_policy": "expirationPolicy",
         "enable_message_ordering": "enableMessageOrdering",
         "enable_exactly_once_delivery": "enableExactlyOnceDelivery",
         "retry_policy": "retryPolicy", "push_config": "pushConfig",
         "bigquery_config": "bigqueryConfig", "cloud_storage_config": "cloudStorageConfig",
         "dead_letter_policy": "deadLetterPolicy", "message_transforms": "messageTransforms",
         "max_messages": "maxMessages", "return_immediately": "returnImmediately",
         "ack_ids": "ackIds", "update_mask": "updateMask"}
DURATION_RE = re.compile(r"(\d+)(?:\.(\d{1,9}))?s")


def _camel(body: Any, what: str) -> dict[str, Any]:
    """A JSON object with proto field names (snake_case) turned into JSON names."""
    if not isinstance(body, dict):
        raise ApiError(400, f"Invalid JSON payload received: the body must be {what}")
    return {SNAKE.get(k, k): v for k, v in body.items()}


def _seconds(field: str, value: Any) -> float:
    """A google-duration ("3.5s") in seconds; anything else is a 400."""
    match = DURATION_RE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ApiError(400, f"Invalid value at '{field}' ({value!r}): a duration such as "
                            "\"600s\" was expected")
    return int(match.group(1)) + float(f"0.{match.group(2) or 0}")


def _ack_id(subscription: str, key: str, delivery: int) -> str:
    text = f"{subscription}#{key}#{delivery}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


class SubscriptionsService:
    """Subscriptions, their backlogs and the leases of pulled messages."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._changed = threading.Condition()  # publish, nack and close wake waiting pulls
        self._leases: dict[str, dict[str, tuple[float, int]]] = {}  # sub -> key -> (until, n)
        self._last_key = 0
        self._closed = False

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    # -- subscriptions -------------------------------------------------------------
    def create(self, name: str, body: Any) -> Resource:
        project = self._project(name)
        body = _camel(body, "a Subscription")
        self._known_fields(body, "subscription")
        if body.get("name") not in (None, name):
            raise ApiError(400, f"subscription.name {body['name']!r} does not match the "
                                f"resource name {name!r} of the request")
        topic = body.get("topic")
        if not isinstance(topic, str) or not TOPIC_RE.fullmatch(topic):
            raise ApiError(400, f"Invalid resource name given (name={topic}). The topic must "
                                "be projects/{project}/topics/{topic}")
        if self.store.get_resource(TOPIC_KIND, topic) is None:
            raise ApiError(404, f"Resource not found (resource={topic.rsplit('/', 1)[-1]}).",
                           resource=topic)
        if self.store.get_resource(KIND, name) is not None:
            raise ApiError(409, "Resource already exists in the project (resource="
                                f"{name.rsplit('/', 1)[-1]}).")
        subscription: Resource = {"name": name, "topic": topic, "pushConfig": {},
                                  "ackDeadlineSeconds": DEFAULT_ACK_DEADLINE,
                                  "messageRetentionDuration": f"{DEFAULT_RETENTION}s",
                                  "expirationPolicy": {"ttl": f"{DEFAULT_TTL}s"},
                                  "state": "ACTIVE"}
        self._apply(subscription, body, [k for k in SETTABLE if k in body])
        self.store.put_resource(KIND, subscription, f"projects/{project}")
        return subscription

    def get(self, name: str) -> Resource:
        self._project(name)
        subscription = self.store.get_resource(KIND, name)
        if subscription is None:
            raise ApiError(404, f"Resource not found (resource={name.rsplit('/', 1)[-1]}).",
                           resource=name)
        return subscription

    def patch(self, name: str, body: Any) -> Resource:
        body = _camel(body, "an UpdateSubscriptionRequest")
        unknown = sorted(set(body) - {"subscription", "updateMask"})
        if unknown:
            raise ApiError(400, f'Invalid JSON payload received. Unknown name "{unknown[0]}": '
                                "Cannot find field.")
        changes = _camel(body.get("subscription"), "an UpdateSubscriptionRequest.subscription")
        self._known_fields(changes, "subscription")
        mask = body.get("updateMask")
        paths = [SNAKE.get(p.strip(), p.strip()) for p in mask.split(",") if p.strip()] \
            if isinstance(mask, str) else []
        if not paths:
            raise ApiError(400, "update_mask is required and must name the fields to update")
        subscription = self.get(name)
        self._apply(subscription, changes, paths)
        self.store.put_resource(KIND, subscription, name.split("/subscriptions/")[0])
        return subscription

    def delete(self, name: str) -> Resource:
        self.get(name)
        self.store.delete_resource(KIND, name)
        for message in self.store.list_resources(MESSAGE_KIND, name):
            self.store.delete_resource(MESSAGE_KIND, message["name"])
        with self._changed:
            self._leases.pop(name, None)
            self._changed.notify_all()
        return {}

    def list(self, project: str, size: Any, token: str | None) -> Resource:
        return wire.paged("subscriptions", f"projects/{project}", size, token,
                          lambda offset, count: self.store.list_resources(
                              KIND, f"projects/{project}")[offset:offset + count], default=100)

    def list_for_topic(self, topic: str, size: Any, token: str | None) -> Resource:
        if self.store.get_resource(TOPIC_KIND, topic) is None:
            raise ApiError(404, f"Resource not found (resource={topic.rsplit('/', 1)[-1]}).",
                           resource=topic)
        names = [s["name"] for s in self.store.list_resources(KIND) if s["topic"] == topic]
        return wire.paged("subscriptions", topic, size, token,
                          lambda offset, count: names[offset:offset + count], default=100)

    def _project(self, name: str) -> str:
        match = NAME_RE.fullmatch(name)
        if not match or match.group(2).startswith("goog"):
            raise ApiError(400, f"Invalid resource name given (name={name}). Refer to "
                                "https://cloud.google.com/pubsub/docs/pubsub-basics"
                                "#resource_names")
        return match.group(1)

    def _known_fields(self, body: dict[str, Any], where: str) -> None:
        for key in body:
            if key not in FIELDS:
                raise ApiError(400, f'Invalid JSON payload received. Unknown name "{key}" at '
                                    f"'{where}': Cannot find field.")
        for key in UNSERVED:
            if body.get(key):
                raise ApiError(501, f"wfgen serve delivers only by pull: {key} is not served",
                               code_name="UNIMPLEMENTED")

    def _apply(self, subscription: Resource, changes: dict[str, Any],
               paths: list[str]) -> None:
        """Set the masked fields from `changes` (absent in changes: back to the default)."""
        for path in paths:
            if path not in SETTABLE:
                raise ApiError(400, f"Invalid update_mask provided in the "
                                    f"UpdateSubscriptionRequest: '{path}' cannot be updated")
            if path not in changes:
                subscription.pop(path, None)
                continue
            value = changes[path]
            if path == "ackDeadlineSeconds":
                if isinstance(value, bool) or not isinstance(value, int) or not (
                        value == 0 or 10 <= value <= MAX_ACK_DEADLINE):
                    raise ApiError(400, f"Invalid ack deadline given: {value!r}. It must be "
                                        f"between 10 and {MAX_ACK_DEADLINE} seconds")
                value = value or DEFAULT_ACK_DEADLINE
            elif path == "messageRetentionDuration":
                seconds = _seconds("message_retention_duration", value)
                if not MIN_RETENTION <= seconds <= MAX_RETENTION:
                    raise ApiError(400, f"Invalid message_retention_duration {value!r}: it "
                                        "must be between 10 minutes and 31 days")
            elif path == "expirationPolicy":
                if not isinstance(value, dict) or set(value) - {"ttl"}:
                    raise ApiError(400, "expiration_policy must be {\"ttl\": DURATION}")
                if "ttl" in value and _seconds("expiration_policy.ttl", value["ttl"]) < 86400:
                    raise ApiError(400, "expiration_policy.ttl must be at least 1 day")
            elif path == "labels":
                if not isinstance(value, dict) or not all(
                        isinstance(v, str) for v in value.values()):
                    raise ApiError(400, "labels must map names to strings")
            elif path == "retryPolicy":
                if not isinstance(value, dict):
                    raise ApiError(400, "retry_policy must be an object")
            elif not isinstance(value, bool):
                raise ApiError(400, f"Invalid value at '{path}': {value!r} (a boolean)")
            subscription[path] = value

    # -- messages ------------------------------------------------------------------
    def deliver(self, topic: str, message: Resource) -> list[str]:
        """Put a just-published message in the backlog of every subscription on
        `topic`; the subscriptions' names."""
        kept = {k: message[k] for k in ("data", "attributes", "messageId", "publishTime",
                                        "orderingKey") if message.get(k)}
        names = []
        for subscription in self.store.list_resources(KIND):
            if subscription["topic"] != topic or subscription.get("detached"):
                continue
            with self._changed:
                self._last_key = max(self._last_key + 1, time.time_ns())
                key = f"{self._last_key:020d}"
            self.store.put_resource(MESSAGE_KIND, {"name": f"{subscription['name']}/m/{key}",
                                                   "published": time.time(), "message": kept},
                                    subscription["name"])
            names.append(subscription["name"])
        if names:
            with self._changed:
                self._changed.notify_all()
        return names

    def pull(self, name: str, body: Any, server_timeout: str | None) -> Resource:
        body = _camel(body, "a PullRequest")
        unknown = sorted(set(body) - {"maxMessages", "returnImmediately"})
        if unknown:
            raise ApiError(400, f'Invalid JSON payload received. Unknown name "{unknown[0]}": '
                                "Cannot find field.")
        most = body.get("maxMessages")
        if isinstance(most, str) and most.isdigit():
            most = int(most)
        if isinstance(most, bool) or not isinstance(most, int) or most <= 0:
            raise ApiError(400, f"max_messages must be a positive integer, not {most!r}")
        wait = 0.0 if body.get("returnImmediately") is True else PULL_WAIT_S
        if wait and server_timeout and server_timeout.strip().isdigit():
            wait = min(float(server_timeout), MAX_PULL_WAIT_S)
        deadline = time.monotonic() + wait
        with self._changed:
            while True:
                received = self._take(self.get(name), min(most, MAX_PULL))
                left = deadline - time.monotonic()
                if received or left <= 0 or self._closed:
                    break
                self._changed.wait(min(left, 1.0))  # leases also end with time
        return {"receivedMessages": received} if received else {}

    def _take(self, subscription: Resource, most: int) -> list[Resource]:
        """Lease up to `most` messages that nobody holds (called with the lock)."""
        name = subscription["name"]
        leases = self._leases.setdefault(name, {})
        now, clock = time.time(), time.monotonic()
        retention = _seconds("message_retention_duration",
                             subscription.get("messageRetentionDuration",
                                              f"{DEFAULT_RETENTION}s"))
        out = []
        for stored in self.store.list_resources(MESSAGE_KIND, name):
            key = stored["name"].rsplit("/", 1)[-1]
            if now - stored["published"] > retention:
                self.store.delete_resource(MESSAGE_KIND, stored["name"])
                leases.pop(key, None)
                continue
            until, delivery = leases.get(key, (0.0, 0))
            if until > clock:
                continue
            leases[key] = (clock + subscription["ackDeadlineSeconds"], delivery + 1)
            out.append({"ackId": _ack_id(name, key, delivery + 1),
                        "message": stored["message"]})
            if len(out) >= most:
                break
        return out

    def acknowledge(self, name: str, body: Any) -> Resource:
        body = _camel(body, "an AcknowledgeRequest")
        keys = self._ack_keys(name, body, {"ackIds"})
        with self._changed:
            leases = self._leases.setdefault(name, {})
            for key in keys:
                self.store.delete_resource(MESSAGE_KIND, f"{name}/m/{key}")
                leases.pop(key, None)
        return {}

    def modify_ack_deadline(self, name: str, body: Any) -> Resource:
        body = _camel(body, "a ModifyAckDeadlineRequest")
        seconds = body.get("ackDeadlineSeconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not (
                0 <= seconds <= MAX_ACK_DEADLINE):
            raise ApiError(400, f"Invalid ack deadline given: {seconds!r}. It must be between "
                                f"0 and {MAX_ACK_DEADLINE} seconds")
        keys = self._ack_keys(name, body, {"ackIds", "ackDeadlineSeconds"})
        with self._changed:
            leases = self._leases.setdefault(name, {})
            for key in keys:
                if key in leases:
                    leases[key] = (time.monotonic() + seconds, leases[key][1])
            self._changed.notify_all()
        return {}

    def _ack_keys(self, name: str, body: dict[str, Any], allowed: set[str]) -> list[str]:
        self.get(name)
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ApiError(400, f'Invalid JSON payload received. Unknown name "{unknown[0]}": '
                                "Cannot find field.")
        ids = body.get("ackIds")
        if not isinstance(ids, list) or not ids:
            raise ApiError(400, "No ack ids specified.")
        keys = []
        for ack_id in ids:
            try:
                text = base64.urlsafe_b64decode(str(ack_id).encode() + b"==").decode()
                owner, key, _delivery = text.rsplit("#", 2)
            except (ValueError, binascii.Error, UnicodeDecodeError):
                owner = key = ""
            if owner != name or not key.isdigit():
                raise ApiError(400, "You have passed an invalid ack ID to the service "
                                    f"(ack_id={str(ack_id)[:64]}).")
            keys.append(key)
        return keys


class SubscriptionsRest:
    """The REST paths of subscriptions (and a topic's list of them)."""

    def __init__(self, service: SubscriptionsService) -> None:
        self.service = service

    def handle(self, request: Request) -> Response | None:
        path = request.path
        if not path.startswith("/v1/projects/"):
            return None
        name, _, custom = path[len("/v1/"):].rstrip("/").partition(":")
        parts = name.split("/")
        method = request.method
        if len(parts) == 5 and parts[2] == "topics" and parts[4] == "subscriptions":
            if method != "GET" or custom:
                raise ApiError(405, f"{method} is not allowed on {path}",
                               code_name="UNIMPLEMENTED")
            return Response.of_json(self.service.list_for_topic(
                "/".join(parts[:4]), request.arg("pageSize"), request.arg("pageToken")))
        if len(parts) < 3 or parts[2] != "subscriptions":
            return None
        if len(parts) == 3 and not custom:
            if method != "GET":
                raise ApiError(405, f"{method} is not allowed on {path}",
                               code_name="UNIMPLEMENTED")
            return Response.of_json(self.service.list(parts[1], request.arg("pageSize"),
                                                      request.arg("pageToken")))
        service = self.service
        if custom:
            service._project(name)
            if method != "POST":
                raise ApiError(405, f"{method} is not allowed on {path}",
                               code_name="UNIMPLEMENTED")
            if custom == "pull":
                return Response.of_json(service.pull(name, request.json(),
                                                     request.headers.get("x-server-timeout")))
            if custom == "acknowledge":
                return Response.of_json(service.acknowledge(name, request.json()))
            if custom == "modifyAckDeadline":
                return Response.of_json(service.modify_ack_deadline(name, request.json()))
            raise ApiError(501, f"wfgen serve does not serve subscriptions :{custom}",
                           code_name="UNIMPLEMENTED")
        if method == "PUT":
            return Response.of_json(service.create(name, request.json()))
        if method == "GET":
            return Response.of_json(service.get(name))
        if method == "PATCH":
            return Response.of_json(service.patch(name, request.json()))
        if method == "DELETE":
            return Response.of_json(service.delete(name))
        raise ApiError(405, f"{method} is not allowed on {path}", code_name="UNIMPLEMENTED")
