"""Uploading a job's packed workdir to its staging place, once: the object is
named by the archive's sha256 (wfgen.job.workdir), so when it is already there
the tree is unchanged and nothing is uploaded. The upload is conditional
(ifGenerationMatch=0): two runs racing to stage the same tree both succeed and
neither overwrites the other.

The endpoint: STORAGE_EMULATOR_HOST, else WORKFLOWS_EMULATOR_HOST's (wfgen serve
answers both on one port), else Google's with the default credentials."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wfgen.errors import WfgenError
from wfgen.job.data_uris import parse_uri
from wfgen.job.workdir import Workdir, collect, write

Notify = Callable[[str], None]


def storage_client(project: str | None = None, endpoint: str | None = None) -> Any:
    """A Cloud Storage client for `endpoint`, else this run's (serve's when it is set)."""
    from google.cloud import storage

    host = (endpoint or os.environ.get("STORAGE_EMULATOR_HOST")
            or os.environ.get("WORKFLOWS_EMULATOR_HOST"))
    if not host:
        return storage.Client(project=project)
    from google.auth.credentials import AnonymousCredentials

    return storage.Client(project=project or "local-project",
                          credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": host if "://" in host
                                          else f"http://{host}"})


def stage(packed: Workdir, uri: str, notify: Notify, client: Any = None) -> bool:
    """Upload the tree to `uri` unless it is there; True when this call uploaded it.
    The tree is packed again into a temporary file: when its bytes no longer hash
    to the name (a file changed since), nothing is uploaded and the run stops."""
    from google.api_core import exceptions

    target = parse_uri(uri, output=True)
    client = client or storage_client()
    blob = client.bucket(target.bucket).blob(target.path)
    try:
        if blob.exists():
            notify(f"workdir unchanged: {uri} is already staged; nothing uploaded")
            return False
        with tempfile.TemporaryFile(prefix="wfgen-workdir-") as archive:
            write(packed.root, collect(packed.root), archive)
            archive.seek(0)
            digest = hashlib.file_digest(archive, "sha256").hexdigest()  # type: ignore[arg-type]
            if digest != packed.sha256:
                raise WfgenError(f"workdir {packed.root} changed while wfgen packed it; "
                                 "run again")
            archive.seek(0)
            blob.upload_from_file(archive, content_type="application/gzip",
                                  if_generation_match=0)
    except exceptions.PreconditionFailed:
        notify(f"workdir unchanged: {uri} was staged meanwhile; nothing uploaded")
        return False
    except exceptions.GoogleAPICallError as exc:
        raise WfgenError(f"workdir: staging {uri}: HTTP {exc.code}: {exc.message}") from None
    except OSError as exc:
        raise WfgenError(f"workdir: staging {uri}: {exc}") from None
    notify(f"workdir {Path(packed.root).name}/ staged: {len(packed.files)} files, "
           f"{packed.size} bytes -> {uri}")
    return True


def stage_items(objects: tuple[tuple[str, bytes], ...], notify: Notify,
                client: Any = None) -> int:
    """Upload a split job's shard items (wfgen.job.render_split: each named by its
    sha256) unless they are there; how many this call uploaded."""
    from google.api_core import exceptions

    client = client or storage_client()
    uploaded = 0
    for uri, body in objects:
        target = parse_uri(uri, output=True)
        blob = client.bucket(target.bucket).blob(target.path)
        try:
            if blob.exists():
                continue
            blob.upload_from_string(body, content_type="application/json",
                                    if_generation_match=0)
            uploaded += 1
        except exceptions.PreconditionFailed:
            continue
        except exceptions.GoogleAPICallError as exc:
            raise WfgenError(f"tasks.items: staging {uri}: HTTP {exc.code}: "
                             f"{exc.message}") from None
    notify(f"items staged: {len(objects)} shard objects ({uploaded} uploaded, "
           f"{len(objects) - uploaded} already there) under {objects[0][0].rsplit('/', 1)[0]}/")
    return uploaded
