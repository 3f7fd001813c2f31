"""The Cloud Storage connector's functions for the local runtime:
`googleapis.storage.v1.objects.get` (a split job's child reads its shard's items
with it, wfgen.job.render_split) and `objects.insert` (media), `objects.compose`
and `objects.delete` (a job's `tasks.report`: each child uploads its part, the
parent composes the parts into the report and deletes them). They call the
Cloud Storage `endpoint()` names (serve sets its own), else this run's
(STORAGE_EMULATOR_HOST, else Google's: wfgen.backends.cloud_staging.storage_client).

As Google's connector: object names in the URL path (`object`, `name`,
`destinationObject`) arrive URL-encoded; `alt: media` answers the object's bytes,
decoded when they are JSON (else text); without it, the object's metadata.
`uploadType: media` uploads `body` as the object's bytes: a string as it is
(text/plain), any other value as JSON. A Cloud Storage error raises the HttpError
a connector raises (404 for a missing object)."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

NAME = "googleapis.storage.v1.objects.get"
INSERT = "googleapis.storage.v1.objects.insert"
COMPOSE = "googleapis.storage.v1.objects.compose"
DELETE = "googleapis.storage.v1.objects.delete"


class _Storage:
    """The storage client the connector functions share, made on first use."""

    def __init__(self, endpoint: Callable[[], str | None]) -> None:
        self._endpoint = endpoint
        self._client: Any = None

    def bucket(self, name: str) -> Any:
        from wfgen.backends.cloud_staging import storage_client

        if self._client is None:
            self._client = storage_client(endpoint=self._endpoint())
        return self._client.bucket(name)


class _Connector:
    """One connector function over a (possibly shared) storage client."""

    def __init__(self, endpoint: Callable[[], str | None] = lambda: None,
                 storage: _Storage | None = None) -> None:
        self._storage = storage or _Storage(endpoint)

    def bucket(self, name: str) -> Any:
        return self._storage.bucket(name)


@contextmanager
def _as_http_errors(bucket: str, name: str) -> Iterator[None]:
    """The client's errors as the HttpError a workflow's connector call raises."""
    from google.api_core import exceptions
    from google.auth import exceptions as auth_exceptions

    from wfgen.local.compute_records import ComputeError

    try:
        yield
    except auth_exceptions.GoogleAuthError as exc:  # no credentials for Google's Storage
        raise ComputeError(401, f"Cloud Storage: {exc} (under wfgen run --local, set "
                           "STORAGE_EMULATOR_HOST to use a wfgen serve's)",
                           "required").workflow_error() from None
    except exceptions.NotFound:
        raise ComputeError(404, f"No such object: {bucket}/{name}",
                           "notFound").workflow_error() from None
    except exceptions.GoogleAPICallError as exc:
        raise ComputeError(int(exc.code or 500), str(exc.message),
                           "backendError").workflow_error() from None


class ObjectsGet(_Connector):
    """objects.get: the object's metadata, or with `alt: media` its content."""

    def __call__(self, rt: Any, connector_params: Any = None, *, bucket: str, object: str,
                 alt: str = "json", **_: Any) -> Any:
        name = urllib.parse.unquote(object)
        with _as_http_errors(bucket, name):
            blob = self.bucket(bucket).blob(name)
            if alt != "media":
                blob.reload()
                return dict(blob._properties)
            data = blob.download_as_bytes()
        try:
            return json.loads(data)
        except ValueError:
            return data.decode("utf-8", errors="replace")


class ObjectsInsert(_Connector):
    """objects.insert with `uploadType: media`: `body` is the object's content."""

    def __call__(self, rt: Any, connector_params: Any = None, *, bucket: str, name: str,
                 body: Any = None, uploadType: str = "media", **_: Any) -> Any:
        from wfgen.local.compute_records import ComputeError

        if uploadType != "media":
            raise ComputeError(400, f"uploadType {uploadType!r}: this connector uploads "
                               "media only", "invalid").workflow_error()
        object_name = urllib.parse.unquote(name)
        if isinstance(body, str):
            data, content_type = body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            from wfgen.engine.stdlib.json_ import to_json_text

            data, content_type = to_json_text(body).encode("utf-8"), "application/json"
        with _as_http_errors(bucket, object_name):
            blob = self.bucket(bucket).blob(object_name)
            blob.upload_from_string(data, content_type=content_type)
        return dict(blob._properties)


class ObjectsCompose(_Connector):
    """objects.compose: `body.sourceObjects` (names, in order) into `destinationObject`."""

    def __call__(self, rt: Any, connector_params: Any = None, *, destinationBucket: str,
                 destinationObject: str, body: Any = None, **_: Any) -> Any:
        name = urllib.parse.unquote(destinationObject)
        body = body if isinstance(body, dict) else {}
        with _as_http_errors(destinationBucket, name):
            bucket = self.bucket(destinationBucket)
            sources = [bucket.blob(s["name"]) for s in body.get("sourceObjects") or []
                       if isinstance(s, dict) and isinstance(s.get("name"), str)]
            blob = bucket.blob(name)
            content_type = (body.get("destination") or {}).get("contentType")
            if content_type:
                blob.content_type = content_type
            blob.compose(sources)
        return dict(blob._properties)


class ObjectsDelete(_Connector):
    """objects.delete: the object is gone (a missing one raises 404)."""

    def __call__(self, rt: Any, connector_params: Any = None, *, bucket: str, object: str,
                 **_: Any) -> Any:
        name = urllib.parse.unquote(object)
        with _as_http_errors(bucket, name):
            self.bucket(bucket).blob(name).delete()
        return None


def register(target: Any, endpoint: Callable[[], str | None]) -> None:
    """Register every Cloud Storage connector function above on `target`, over
    one storage client."""
    storage = _Storage(endpoint)
    for name, kind in ((NAME, ObjectsGet), (INSERT, ObjectsInsert),
                       (COMPOSE, ObjectsCompose), (DELETE, ObjectsDelete)):
        target.register(name, kind(storage=storage))
