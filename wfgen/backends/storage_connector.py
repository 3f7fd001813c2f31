"""The Cloud Storage connector's `googleapis.storage.v1.objects.get` for the local
runtime: a split job's child reads its shard's items with it (wfgen.job.
render_split). It calls the Cloud Storage `endpoint()` names (serve sets its
own), else this run's (STORAGE_EMULATOR_HOST, else Google's:
wfgen.backends.cloud_staging.storage_client). As Google's
connector: `object` arrives URL-encoded; `alt: media` answers the object's
bytes, decoded when they are JSON (else text); without it, the object's
metadata. A missing object raises the HttpError 404 a connector raises."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from typing import Any

NAME = "googleapis.storage.v1.objects.get"


class ObjectsGet:
    """The connector function; the storage client is made on its first call."""

    def __init__(self, endpoint: Callable[[], str | None] = lambda: None) -> None:
        self._endpoint = endpoint
        self._client: Any = None

    def __call__(self, rt: Any, connector_params: Any = None, *, bucket: str, object: str,
                 alt: str = "json", **_: Any) -> Any:
        from google.api_core import exceptions

        from wfgen.backends.cloud_staging import storage_client
        from wfgen.local.compute_records import ComputeError

        name = urllib.parse.unquote(object)
        if self._client is None:
            self._client = storage_client(endpoint=self._endpoint())
        blob = self._client.bucket(bucket).blob(name)
        try:
            if alt != "media":
                blob.reload()
                return dict(blob._properties)
            data = blob.download_as_bytes()
        except exceptions.NotFound:
            raise ComputeError(404, f"No such object: {bucket}/{name}",
                               "notFound").workflow_error() from None
        except exceptions.GoogleAPICallError as exc:
            raise ComputeError(int(exc.code or 500), str(exc.message),
                               "backendError").workflow_error() from None
        try:
            return json.loads(data)
        except ValueError:
            return data.decode("utf-8", errors="replace")
