"""The Cloud Storage JSON API (storage v1) in `wfgen serve`, shaped by its
Discovery document: buckets (insert, get, list, patch, delete,
getStorageLayout) and objects (insert: media, multipart and resumable
uploads; get, with alt=media and byte ranges, also under /download/; list
with prefix, delimiter, startOffset/endOffset, matchGlob and paging; patch,
delete, copy, rewrite, compose), with generation preconditions.

Bodies stream: an upload goes to disk as it arrives and a download leaves a
chunk at a time (wfgen.server.storage_store), so a 500 MB object moves with
serve's memory flat. Errors are the JSON API's shape ({"error": {"code",
"message", "errors": [{"domain", "reason", "message"}]}}) that gcloud and
google-cloud-storage read. One project, no IAM: every bucket is the caller's."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from wfgen.job.gcs_names import bucket_problem, object_problem
from wfgen.local.loopback import MAX_BODY, ApiError, BodyStream, Request, Response
from wfgen.server import wire
from wfgen.server.storage_store import ObjectStore, Resource, Written, read_range

JSON_PREFIX = "/storage/v1/"
UPLOAD_PREFIXES = ("/upload/storage/v1/", "/resumable/upload/storage/v1/")
DOWNLOAD_PREFIX = "/download/storage/v1/"
MAX_RESULTS = 1000
MAX_COMPOSE = 32
PROJECT_NUMBER = "0"
REASONS = {400: "invalid", 401: "required", 403: "forbidden", 404: "notFound",
           409: "conflict", 412: "conditionNotMet", 413: "uploadTooLarge",
           416: "requestedRangeNotSatisfiable", 499: "clientClosedRequest"}
OBJECT_FIELDS = ("contentType", "contentEncoding", "contentDisposition", "contentLanguage",
                 "cacheControl", "customTime", "metadata", "storageClass")
RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
CONTENT_RANGE_RE = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)")


class StorageError(ApiError):
    """An error in the JSON API's own shape (not google.rpc.Status)."""

    def response(self) -> Response:
        reason = REASONS.get(self.status, "backendError")
        return Response.of_json({"error": {"code": self.status, "message": self.message,
                                           "errors": [{"message": self.message,
                                                       "domain": "global",
                                                       "reason": reason}]}}, self.status)


def _int_arg(request: Request, name: str) -> int | None:
    value = request.arg(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise StorageError(400, f"Invalid value for {name}: {value!r}") from None


def _segments(raw_path: str, prefix: str) -> list[str]:
    """The path after prefix as decoded segments (object names keep their '/')."""
    return [unquote(part) for part in raw_path[len(prefix):].split("/")]


def _glob_regex(glob: str) -> re.Pattern[str]:
    """matchGlob: ** any characters, * and ? within one path part, [..], {a,b}."""
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 1)
            if end < 0:
                raise StorageError(400, f"Invalid matchGlob {glob!r}: unclosed '['")
            body = glob[i + 1:end]
            out.append("[" + ("^" + re.escape(body[1:]) if body.startswith("!")
                              else re.escape(body)) + "]")
            i = end + 1
            continue
        elif c == "{":
            end = glob.find("}", i + 1)
            if end < 0:
                raise StorageError(400, f"Invalid matchGlob {glob!r}: unclosed '{{'")
            out.append("(?:" + "|".join(re.escape(p) for p in glob[i + 1:end].split(",")) + ")")
            i = end + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _after(prefix: str) -> str:
    """The smallest string greater than every string starting with prefix."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class StorageApi:
    """The REST handler; `store` keeps the buckets and bytes."""

    def __init__(self, store: ObjectStore, project: str) -> None:
        self.store = store
        self.project = project

    def streams(self, path: str) -> bool:
        """Upload bodies reach the handler unread (any size, never held whole)."""
        return path.startswith(UPLOAD_PREFIXES)

    def handle(self, request: Request) -> Response | None:
        raw = request.raw_path or quote(request.path)
        if raw.startswith(JSON_PREFIX):
            return self._json_api(request, _segments(raw, JSON_PREFIX))
        for prefix in UPLOAD_PREFIXES:
            if raw.startswith(prefix):
                return self._upload(request, _segments(raw, prefix))
        if raw.startswith(DOWNLOAD_PREFIX):
            parts = _segments(raw, DOWNLOAD_PREFIX)
            if len(parts) == 4 and parts[0] == "b" and parts[2] == "o" and \
                    request.method in ("GET", "HEAD"):
                return self._media(request, parts[1], parts[3])
            raise StorageError(404, "Not Found")
        return None

    # routing

    def _json_api(self, request: Request, parts: list[str]) -> Response:
        method = request.method
        if parts[0] != "b":
            raise StorageError(404, "Not Found")
        if len(parts) == 1 or (len(parts) == 2 and parts[1] == ""):
            if method == "GET":
                return self._list_buckets(request)
            if method == "POST":
                return self._insert_bucket(request)
        elif len(parts) == 2:
            return self._bucket_call(request, parts[1])
        elif len(parts) == 3 and parts[2] == "storageLayout" and method == "GET":
            bucket = self._bucket(parts[1])
            return Response.of_json({"kind": "storage#storageLayout", "bucket": parts[1],
                                     "location": bucket["location"],
                                     "locationType": bucket["locationType"],
                                     "hierarchicalNamespace": {"enabled": False}})
        elif len(parts) == 3 and parts[2] == "o" and method == "GET":
            return self._list_objects(request, parts[1])
        elif len(parts) == 4 and parts[2] == "o":
            return self._object_call(request, parts[1], parts[3])
        elif len(parts) == 5 and parts[2] == "o" and parts[4] == "compose" and method == "POST":
            return self._compose(request, parts[1], parts[3])
        elif len(parts) == 9 and parts[2] == "o" and parts[4] in ("copyTo", "rewriteTo") \
                and parts[5] == "b" and parts[7] == "o" and method == "POST":
            return self._copy(request, parts[1], parts[3], parts[6], parts[8],
                              rewrite=parts[4] == "rewriteTo")
        raise StorageError(404, f"Not Found: {method} {request.path}")

    def _bucket_call(self, request: Request, name: str) -> Response:
        if request.method == "GET":
            return self._show(request, self._bucket(name))
        if request.method == "DELETE":
            self._bucket(name)
            if not self.store.bucket_empty(name):
                raise StorageError(409, "The bucket you tried to delete is not empty.")
            self.store.delete_bucket(name)
            return Response(204)
        if request.method in ("PATCH", "PUT"):
            bucket = self._bucket(name)
            body = self._body(request)
            for key in ("labels", "versioning", "lifecycle", "storageClass"):
                if key in body:
                    bucket[key] = body[key]
            bucket["metageneration"] = str(int(bucket["metageneration"]) + 1)
            bucket["updated"] = wire.now()[1]
            bucket["etag"] = _etag(bucket["metageneration"])
            self.store.delete_bucket(name)
            self.store.put_bucket(bucket)
            return self._show(request, bucket)
        raise StorageError(405, f"{request.method} is not allowed on a bucket")

    def _object_call(self, request: Request, bucket: str, name: str) -> Response:
        if request.method in ("GET", "HEAD"):
            if request.arg("alt") == "media":
                return self._media(request, bucket, name)
            resource, _ = self._object(request, bucket, name)
            return self._show(request, resource)
        if request.method == "DELETE":
            self._object(request, bucket, name)
            self.store.delete(bucket, name)
            return Response(204)
        if request.method in ("PATCH", "PUT"):
            resource, _ = self._object(request, bucket, name)
            body = self._body(request)
            for key in OBJECT_FIELDS:
                if key not in body:
                    continue
                if key == "metadata" and isinstance(body[key], dict):
                    merged = dict(resource.get("metadata") or {})
                    for k, v in body[key].items():
                        if v is None:
                            merged.pop(k, None)
                        else:
                            merged[k] = str(v)
                    resource["metadata"] = merged
                elif body[key] is None:
                    resource.pop(key, None)
                else:
                    resource[key] = body[key]
            resource["metageneration"] = str(int(resource["metageneration"]) + 1)
            resource["updated"] = wire.now()[1]
            resource["etag"] = _etag(resource["generation"], resource["metageneration"])
            self.store.update(resource)
            return self._show(request, resource)
        raise StorageError(405, f"{request.method} is not allowed on an object")

    # buckets

    def _bucket(self, name: str) -> Resource:
        bucket = self.store.bucket(name)
        if bucket is None:
            raise StorageError(404, "The specified bucket does not exist.")
        return bucket

    def _insert_bucket(self, request: Request) -> Response:
        if not request.arg("project"):
            raise StorageError(400, "Required parameter: project")
        body = self._body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise StorageError(400, "Required field: name")
        problem = bucket_problem(name)
        if problem:
            raise StorageError(400, f"Invalid bucket name: '{name}': {problem}")
        stamp = wire.now()[1]
        location = str(body.get("location") or "US").upper()
        bucket = {"kind": "storage#bucket", "id": name, "name": name,
                  "projectNumber": PROJECT_NUMBER, "metageneration": "1",
                  "location": location,
                  "locationType": "multi-region" if location in ("US", "EU", "ASIA")
                  else "region",
                  "storageClass": body.get("storageClass") or "STANDARD",
                  "timeCreated": stamp, "updated": stamp, "etag": _etag("1"),
                  "generation": str(self.store.next_generation()),
                  "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": True},
                                       "publicAccessPrevention": "inherited"},
                  "rpo": "DEFAULT"}
        if isinstance(body.get("labels"), dict):
            bucket["labels"] = body["labels"]
        if not self.store.put_bucket(bucket):
            raise StorageError(409, "Your previous request to create the named bucket "
                                    "succeeded and you already own it.")
        return self._show(request, bucket)

    def _list_buckets(self, request: Request) -> Response:
        if not request.arg("project"):
            raise StorageError(400, "Required parameter: project")
        limit = self._max_results(request)
        after = self._token(request) or ""
        rows = self.store.buckets(request.arg("prefix") or "", after, limit + 1)
        out: dict[str, Any] = {"kind": "storage#buckets",
                               "items": [self._links(request, b) for b in rows[:limit]]}
        if len(rows) > limit:
            out["nextPageToken"] = _encode_token(rows[limit - 1]["name"])
        return Response.of_json(out)

    # objects: reading

    def _object(self, request: Request, bucket: str, name: str,
                check: bool = True) -> tuple[Resource, Path]:
        self._bucket(bucket)
        found = self.store.object(bucket, name)
        generation = _int_arg(request, "generation")
        if found is None or (generation is not None and
                             int(found[0]["generation"]) != generation):
            raise StorageError(404, f"No such object: {bucket}/{name}")
        if check:
            self._preconditions(request, found[0])
        return found

    def _media(self, request: Request, bucket: str, name: str) -> Response:
        resource, path = self._object(request, bucket, name)
        size = int(resource["size"])
        headers = {"x-goog-generation": resource["generation"],
                   "x-goog-metageneration": resource["metageneration"],
                   "x-goog-stored-content-length": str(size),
                   "x-goog-stored-content-encoding": resource.get("contentEncoding")
                   or "identity",
                   "x-goog-hash": ",".join(f"{k}={resource[f]}" for k, f in
                                           (("crc32c", "crc32c"), ("md5", "md5Hash"))
                                           if f in resource),
                   "ETag": resource["etag"], "Accept-Ranges": "bytes"}
        status, start, end = 200, 0, size - 1
        wanted = request.headers.get("range")
        if wanted:
            match = RANGE_RE.fullmatch(wanted.strip())
            if match and (match.group(1) or match.group(2)):
                first, last = match.group(1), match.group(2)
                if first:
                    start, end = int(first), min(int(last), size - 1) if last else size - 1
                else:
                    start, end = max(0, size - int(last)), size - 1
                if start >= size or start > end:
                    if size == 0 and start == 0:
                        start, end = 0, -1
                    else:
                        raise StorageError(416, "The requested range cannot be satisfied.")
                else:
                    status = 206
                    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(max(0, end - start + 1))
        stream = read_range(path, start, end) if end >= start else iter(())
        return Response(status, b"", resource.get("contentType") or
                        "application/octet-stream", headers, stream=stream)

    def _list_objects(self, request: Request, bucket: str) -> Response:
        self._bucket(bucket)
        prefix = request.arg("prefix") or ""
        delimiter = request.arg("delimiter") or ""
        trailing = (request.arg("includeTrailingDelimiter") or "").lower() == "true"
        glob = _glob_regex(request.arg("matchGlob")) if request.arg("matchGlob") else None
        end = request.arg("endOffset") or None
        limit = self._max_results(request)
        cursor = max(prefix, request.arg("startOffset") or "", self._token(request) or "")
        items: list[Resource] = []
        prefixes: list[str] = []
        more = False
        while True:
            rows = self.store.names(bucket, cursor, end, min(MAX_RESULTS, limit + 1))
            if not rows or not rows[0]["name"].startswith(prefix):
                break
            for row in rows:
                name = row["name"]
                if not name.startswith(prefix):
                    rows = []
                    break
                if len(items) + len(prefixes) >= limit:
                    more = True
                    break
                cut = name.find(delimiter, len(prefix)) if delimiter else -1
                if cut >= 0:
                    folder = name[:cut + len(delimiter)]
                    prefixes.append(folder)
                    if trailing and name == folder and (glob is None or glob.fullmatch(name)):
                        items.append(self._links(request, row))
                    cursor = _after(folder)
                    break
                if glob is None or glob.fullmatch(name):
                    items.append(self._links(request, row))
                cursor = name + "\0"
            else:
                continue
            if more or not rows:
                break
        out: dict[str, Any] = {"kind": "storage#objects"}
        if prefixes:
            out["prefixes"] = prefixes
        out["items"] = items
        if more:
            out["nextPageToken"] = _encode_token(cursor)
        return Response.of_json(out)

    # objects: writing

    def _upload(self, request: Request, parts: list[str]) -> Response:
        if len(parts) != 3 or parts[0] != "b" or parts[2] != "o":
            raise StorageError(404, "Not Found")
        bucket = parts[1]
        self._bucket(bucket)
        upload_id = request.arg("upload_id")
        if upload_id is not None:
            return self._resumable_put(request, upload_id)
        if request.method != "POST":
            raise StorageError(405, f"{request.method} needs an upload_id")
        kind = request.arg("uploadType") or "media"
        if kind == "media":
            name = request.arg("name") or ""
            meta = {"name": name, "contentType": request.headers.get("content-type")}
            return self._finish(request, bucket, meta, self._receive(request))
        if kind == "multipart":
            meta, content = self._multipart(request)
            meta.setdefault("name", request.arg("name") or "")
            return self._finish(request, bucket, meta, content)
        if kind == "resumable":
            return self._start_resumable(request, bucket)
        raise StorageError(400, f"Invalid uploadType {kind!r}: media, multipart or resumable")

    def _receive(self, request: Request) -> Written:
        return self.store.write(iter([_body_stream(request)]))

    def _multipart(self, request: Request) -> tuple[Resource, Written]:
        """multipart/related: a JSON part (the object resource), then the media part."""
        stream = _body_stream(request)
        if stream.length > MAX_BODY:
            raise StorageError(413, f"A multipart upload is at most {MAX_BODY} bytes: use a "
                                    "resumable upload for bigger objects")
        body = stream.read()
        match = re.search(r"""boundary=["']?([^"';]+)""", request.headers.get("content-type", ""))
        if not match:
            raise StorageError(400, "A multipart upload needs Content-Type: multipart/related; "
                                    "boundary=...")
        delimiter = b"--" + match.group(1).encode()
        pieces = body.split(delimiter)
        parts = []
        for piece in pieces[1:]:
            if piece.startswith(b"--"):
                break
            # the headers end at the first blank line, CRLF or bare LF (apitools writes LF):
            # whichever comes first, as the media after it may hold either sequence
            ends = [(at, sep) for sep in (b"\r\n\r\n", b"\n\n")
                    if (at := piece.find(sep)) >= 0]
            if not ends:
                raise StorageError(400, "A multipart part has no blank line after its headers")
            at, sep = min(ends)
            head, content = piece[:at], piece[at + len(sep):]
            newline = b"\r\n" if sep == b"\r\n\r\n" else b"\n"
            if content.endswith(newline):  # the line break before the next boundary
                content = content[:-len(newline)]
            parts.append((head.decode("latin-1").lower(), content))
        if len(parts) != 2:
            raise StorageError(400, "A multipart upload has two parts: metadata and media")
        try:
            meta = json.loads(parts[0][1] or b"{}")
        except ValueError:
            raise StorageError(400, "The metadata part of a multipart upload must be "
                                    "JSON") from None
        if not isinstance(meta, dict):
            raise StorageError(400, "The metadata part must be a JSON object")
        media_type = re.search(r"content-type:\s*([^\r\n]+)", parts[1][0])
        if media_type and not meta.get("contentType"):
            meta["contentType"] = media_type.group(1).strip()
        return meta, self.store.write(iter([_BytesReader(parts[1][1])]))

    def _start_resumable(self, request: Request, bucket: str) -> Response:
        stream = _body_stream(request)
        if stream.length > 1 << 20:
            raise StorageError(400, "The metadata of a resumable upload is at most 1 MB")
        text = stream.read()
        try:
            meta = json.loads(text) if text.strip() else {}
        except ValueError:
            raise StorageError(400, "The body of a resumable upload's start must be "
                                    "JSON") from None
        if not isinstance(meta, dict):
            raise StorageError(400, "The body must be a JSON object")
        meta.setdefault("name", request.arg("name") or "")
        if request.headers.get("x-upload-content-type") and not meta.get("contentType"):
            meta["contentType"] = request.headers["x-upload-content-type"]
        self._check_name(meta["name"])
        conditions = {k: v[-1] for k, v in request.query.items()
                      if k.startswith("if") and v}
        upload_id = self.store.new_session({"bucket": bucket, "meta": meta,
                                            "conditions": conditions})
        location = (f"{self._base(request)}/upload/storage/v1/b/{quote(bucket, safe='')}/o?"
                    f"uploadType=resumable&upload_id={upload_id}")
        return Response(200, b"", headers={"Location": location,
                                           "X-GUploader-UploadID": upload_id})

    def _resumable_put(self, request: Request, upload_id: str) -> Response:
        found = self.store.session(upload_id)
        if found is None:
            raise StorageError(404, "No such upload session (it finished or was cancelled)")
        state, data_path = found
        if request.method == "DELETE":
            self.store.end_session(upload_id)
            return Response(499, b"")
        if request.method not in ("PUT", "POST"):
            raise StorageError(405, f"{request.method} is not allowed on an upload session")
        if "done" in state:  # a retry of the last request: the object, again
            return self._show(request, state["done"])
        stream = _body_stream(request)
        count = stream.length
        have = data_path.stat().st_size
        header = (request.headers.get("content-range") or "").strip()
        if not header:
            first, total = 0, count
        else:
            match = CONTENT_RANGE_RE.fullmatch(header)
            if not match:
                raise StorageError(400, f"Invalid Content-Range {header!r}")
            first = int(match.group(1)) if match.group(1) is not None else have
            total = None if match.group(3) == "*" else int(match.group(3))
            if match.group(1) is not None and int(match.group(2)) - first + 1 != count:
                raise StorageError(400, "Content-Range does not match the body's length")
        if first > have:
            raise StorageError(400, f"The upload has {have} bytes: a chunk at {first} "
                                    "leaves a gap")
        stream.read(min(count, have - first))  # bytes we already have
        size = self.store.append(upload_id, stream, stream.left)
        if total is not None and size > total:
            raise StorageError(400, f"The upload has {size} bytes, more than its {total}")
        if total is None or size < total:
            headers = {"Range": f"bytes=0-{size - 1}"} if size else {}
            return Response(308, b"", "text/plain", headers)
        written = self.store.adopt(data_path)
        request.query = {**{k: [v] for k, v in state["conditions"].items()}, **request.query}
        try:
            response = self._finish(request, state["bucket"], dict(state["meta"]), written)
        except StorageError:
            self.store.end_session(upload_id)  # a refused object ends its session
            raise
        state["done"] = json.loads(response.body)
        self.store.end_session(upload_id)
        self.store._save_session(upload_id, state)
        return response

    def _check_name(self, name: Any) -> None:
        if not isinstance(name, str) or not name:
            raise StorageError(400, "Required parameter: name")
        problem = object_problem(name)
        if problem:
            raise StorageError(400, f"Invalid object name {name!r}: {problem}")

    def _finish(self, request: Request, bucket: str, meta: Resource,
                written: Written, components: int | None = None) -> Response:
        """Check the name, the preconditions and the given checksums; then commit."""
        try:
            self._check_name(meta.get("name"))
            name = meta["name"]
            current = self.store.object(bucket, name)
            self._preconditions(request, current[0] if current else None)
            for field, actual, label in (("md5Hash", written.md5, "MD5"),
                                         ("crc32c", written.crc32c, "CRC32C")):
                given = meta.get(field)
                if given and given != actual:
                    raise StorageError(400, f"Provided {label} hash \"{given}\" doesn't match "
                                            f"calculated {label} hash \"{actual}\".")
            given_hash = request.headers.get("x-goog-hash") or ""
            for part in given_hash.split(","):
                key, _, value = part.strip().partition("=")
                expected = {"crc32c": written.crc32c, "md5": written.md5}.get(key)
                if expected and value and value != expected:
                    raise StorageError(400, f"Provided {key} hash doesn't match calculated "
                                            "hash.")
        except BaseException:
            self.store.discard(written)
            raise
        stamp = wire.now()[1]
        generation = str(self.store.next_generation())
        resource: Resource = {"kind": "storage#object", "name": name, "bucket": bucket,
                              "generation": generation, "metageneration": "1",
                              "contentType": meta.get("contentType")
                              or "application/octet-stream",
                              "storageClass": "STANDARD", "size": str(written.size),
                              "crc32c": written.crc32c, "etag": _etag(generation, "1"),
                              "timeCreated": stamp, "updated": stamp,
                              "timeStorageClassUpdated": stamp, "timeFinalized": stamp}
        if components is None:
            resource["md5Hash"] = written.md5
        else:
            resource["componentCount"] = components
        for key in OBJECT_FIELDS:
            if key != "contentType" and meta.get(key) is not None:
                resource[key] = ({k: str(v) for k, v in meta[key].items()}
                                 if key == "metadata" and isinstance(meta[key], dict)
                                 else meta[key])
        self.store.commit(resource, written)
        return self._show(request, resource)

    def _copy(self, request: Request, src_bucket: str, src_name: str, dst_bucket: str,
              dst_name: str, *, rewrite: bool) -> Response:
        source, path = self._object(request, src_bucket, src_name, check=False)
        self._source_preconditions(request, source)
        self._bucket(dst_bucket)
        body = self._body(request)
        meta = {k: source[k] for k in OBJECT_FIELDS if k in source}
        meta.update({k: body[k] for k in OBJECT_FIELDS if body.get(k) is not None})
        meta["name"] = dst_name
        response = self._finish(request, dst_bucket, meta, self.store.write(iter([path])),
                                source.get("componentCount"))
        if not rewrite:
            return response
        resource = json.loads(response.body)
        return Response.of_json({"kind": "storage#rewriteResponse",
                                 "totalBytesRewritten": resource["size"],
                                 "objectSize": resource["size"], "done": True,
                                 "resource": resource})

    def _compose(self, request: Request, bucket: str, name: str) -> Response:
        self._bucket(bucket)
        body = self._body(request)
        sources = body.get("sourceObjects")
        if not isinstance(sources, list) or not sources:
            raise StorageError(400, "Required field: sourceObjects")
        if len(sources) > MAX_COMPOSE:
            raise StorageError(400, f"The number of source objects provided exceeds the "
                                    f"maximum of {MAX_COMPOSE}.")
        paths, components = [], 0
        for i, source in enumerate(sources):
            if not isinstance(source, dict) or not isinstance(source.get("name"), str):
                raise StorageError(400, f"sourceObjects[{i}].name is required")
            found = self.store.object(bucket, source["name"])
            if found is None:
                raise StorageError(404, f"Object {source['name']} (generation: "
                                        f"{source.get('generation', '')}) not found.")
            wanted = (source.get("objectPreconditions") or {}).get("ifGenerationMatch")
            generation = source.get("generation") or wanted
            if generation is not None and str(generation) != found[0]["generation"]:
                raise StorageError(412 if wanted is not None else 404,
                                   f"sourceObjects[{i}]: generation {generation} does not "
                                   "match")
            components += int(found[0].get("componentCount") or 1)
            paths.append(found[1])
        destination = body.get("destination") or {}
        if not isinstance(destination, dict):
            raise StorageError(400, "destination must be an object resource")
        meta = {k: destination[k] for k in OBJECT_FIELDS if destination.get(k) is not None}
        meta["name"] = name
        return self._finish(request, bucket, meta, self.store.write(iter(paths)), components)

    # shared pieces

    def _preconditions(self, request: Request, current: Resource | None) -> None:
        generation = int(current["generation"]) if current else 0
        metageneration = int(current["metageneration"]) if current else None
        checks = (("ifGenerationMatch", lambda v: generation == v),
                  ("ifGenerationNotMatch", lambda v: generation != v),
                  ("ifMetagenerationMatch", lambda v: metageneration == v),
                  ("ifMetagenerationNotMatch", lambda v: metageneration != v))
        for name, holds in checks:
            value = _int_arg(request, name)
            if value is not None and not holds(value):
                raise StorageError(412, "At least one of the pre-conditions you specified "
                                        "did not hold.")

    def _source_preconditions(self, request: Request, source: Resource) -> None:
        value = _int_arg(request, "ifSourceGenerationMatch")
        if value is not None and value != int(source["generation"]):
            raise StorageError(412, "At least one of the pre-conditions you specified did "
                                    "not hold.")

    def _body(self, request: Request) -> Resource:
        try:
            body = request.json()
        except ApiError as exc:
            raise StorageError(400, exc.message) from None
        if not isinstance(body, dict):
            raise StorageError(400, "The request body must be a JSON object")
        return body

    def _max_results(self, request: Request) -> int:
        value = _int_arg(request, "maxResults")
        if value is not None and value < 0:
            raise StorageError(400, "maxResults must not be negative")
        return min(value or MAX_RESULTS, MAX_RESULTS)

    def _token(self, request: Request) -> str | None:
        token = request.arg("pageToken")
        if not token:
            return None
        try:
            return base64.urlsafe_b64decode(token.encode() + b"==").decode()
        except ValueError:
            raise StorageError(400, f"Invalid page token {token!r}") from None

    def _base(self, request: Request) -> str:
        return f"http://{request.headers.get('host') or '127.0.0.1'}"

    def _links(self, request: Request, resource: Resource) -> Resource:
        base = self._base(request)
        out = dict(resource)
        if resource.get("kind") == "storage#bucket":
            out["selfLink"] = f"{base}/storage/v1/b/{quote(resource['name'], safe='')}"
            return out
        bucket, name = quote(resource["bucket"], safe=""), quote(resource["name"], safe="")
        out["id"] = f"{resource['bucket']}/{resource['name']}/{resource['generation']}"
        out["selfLink"] = f"{base}/storage/v1/b/{bucket}/o/{name}"
        out["mediaLink"] = (f"{base}/download/storage/v1/b/{bucket}/o/{name}?generation="
                            f"{resource['generation']}&alt=media")
        return out

    def _show(self, request: Request, resource: Resource) -> Response:
        return Response.of_json(self._links(request, resource))


class _BytesReader:
    """A body already read, with BodyStream's reading interface."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._at = 0
        self.length = len(data)

    @property
    def left(self) -> int:
        return self.length - self._at

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else min(len(self._data), self._at + size)
        chunk = bytes(self._data[self._at:end])
        self._at = end
        return chunk


def _body_stream(request: Request) -> BodyStream | _BytesReader:
    """The upload's body as a reader: streamed when the server let it, else as read."""
    return request.stream if request.stream is not None else _BytesReader(request.body)


def _etag(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode(), usedforsecurity=False).hexdigest()[:16]


def _encode_token(cursor: str) -> str:
    return base64.urlsafe_b64encode(cursor.encode()).decode().rstrip("=")
