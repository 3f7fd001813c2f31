"""Small namespaces: `uuid` and `hash`."""

from __future__ import annotations

from typing import Any

from wfgen.engine.errors import make_error
from wfgen.engine.stdlib import builtin
from wfgen.engine.stdlib._values import type_error

_ALGORITHMS = {"MD5": "md5", "SHA1": "sha1", "SHA224": "sha224", "SHA256": "sha256",
               "SHA384": "sha384", "SHA512": "sha512"}


@builtin("uuid.generate")
def generate(rt: Any) -> str:
    """A random (version 4) UUID in its 36-character text form."""
    import uuid  # lazily: uuid/hashlib imports cost more than the calls

    return str(uuid.uuid4())


def _algorithm(fn: str, algorithm: Any) -> str:
    if not isinstance(algorithm, str):
        type_error(fn, "algorithm", "a string", algorithm)
    name = _ALGORITHMS.get(algorithm.upper())
    if name is None:
        raise make_error("ValueError", f"{fn}: unsupported algorithm {algorithm!r}")
    return name


def _bytes(fn: str, arg: str, value: Any) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        type_error(fn, arg, "bytes", value)
    return bytes(value)


@builtin("hash.compute_checksum")
def compute_checksum(rt: Any, data: Any, algorithm: Any) -> bytes:
    """Digest of bytes with MD5/SHA1/SHA224/SHA256/SHA384/SHA512, as bytes."""
    import hashlib

    name = _algorithm("hash.compute_checksum", algorithm)
    return hashlib.new(name, _bytes("hash.compute_checksum", "data", data)).digest()


@builtin("hash.compute_hmac")
def compute_hmac(rt: Any, key: Any, data: Any, algorithm: Any) -> bytes:
    """HMAC of bytes under a bytes key, as bytes."""
    import hmac

    name = _algorithm("hash.compute_hmac", algorithm)
    return hmac.new(
        _bytes("hash.compute_hmac", "key", key), _bytes("hash.compute_hmac", "data", data), name
    ).digest()
