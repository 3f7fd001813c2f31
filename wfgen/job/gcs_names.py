"""Cloud Storage naming rules, written once: the job spec checks its gs://
URIs with them and serve's Storage refuses what Google refuses.

Buckets (cloud.google.com/storage/docs/buckets#naming): 3-63 characters
(up to 222 with dots, each dot-separated part at most 63), lower-case
letters, digits, '-', '_' and '.', starting and ending with a letter or
digit, not an IP address, not starting with "goog" nor containing "google".
Objects (cloud.google.com/storage/docs/objects#naming): 1-1024 bytes of
UTF-8, no carriage return or line feed, not "." or "..", not under
".well-known/acme-challenge/"."""

from __future__ import annotations

import re

BUCKET_CHARS = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
IP_ADDRESS = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
MAX_OBJECT_BYTES = 1024


def bucket_problem(name: str) -> str | None:
    """Why `name` is not a valid bucket name, or None."""
    if not 3 <= len(name) <= 222:
        return "a bucket name has 3 to 63 characters (222 with dots)"
    if not BUCKET_CHARS.fullmatch(name):
        return ("a bucket name uses lower-case letters, digits, '-', '_' and '.', and starts "
                "and ends with a letter or digit")
    parts = name.split(".")
    if "." not in name and len(name) > 63:
        return "a bucket name without dots has at most 63 characters"
    if any(not part or len(part) > 63 for part in parts):
        return "each dot-separated part of a bucket name has 1 to 63 characters"
    if IP_ADDRESS.fullmatch(name):
        return "a bucket name may not be an IP address"
    if name.startswith("goog") or "google" in name or "g00gle" in name:
        return "a bucket name may not start with 'goog' or contain 'google'"
    return None


def object_problem(name: str) -> str | None:
    """Why `name` is not a valid object name, or None."""
    size = len(name.encode("utf-8", "surrogatepass"))
    if not 1 <= size <= MAX_OBJECT_BYTES:
        return "an object name has 1 to 1024 bytes of UTF-8"
    if "\r" in name or "\n" in name:
        return "an object name may not contain a carriage return or line feed"
    if name in (".", ".."):
        return "an object name may not be '.' or '..'"
    if name.startswith(".well-known/acme-challenge/"):
        return "an object name may not start with '.well-known/acme-challenge/'"
    return None
