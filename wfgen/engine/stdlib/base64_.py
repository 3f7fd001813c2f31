"""The `base64` namespace (standard alphabet, RFC 4648)."""

from __future__ import annotations

import binascii
import re
from typing import Any

from wfgen.engine.errors import make_error
from wfgen.engine.stdlib import builtin
from wfgen.engine.stdlib._values import type_error

_ALPHABET = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z")


@builtin("base64.encode")
def encode(rt: Any, data: Any, padding: Any = True) -> str:
    """Base64 text of bytes; with padding=false the trailing "=" are left off."""
    if not isinstance(data, (bytes, bytearray)):
        type_error("base64.encode", "data", "bytes", data)
    if not isinstance(padding, bool):
        type_error("base64.encode", "padding", "a boolean", padding)
    text = binascii.b2a_base64(bytes(data), newline=False).decode("ascii")
    return text if padding else text.rstrip("=")


@builtin("base64.decode")
def decode(rt: Any, data: Any, padding: Any = True) -> bytes:
    """Bytes from Base64 text. "\\r" and "\\n" are ignored; characters outside the
    alphabet, or (padding=true) a length that is not a multiple of 4, are a
    ValueError."""
    if not isinstance(data, str):
        type_error("base64.decode", "data", "a string", data)
    if not isinstance(padding, bool):
        type_error("base64.decode", "padding", "a boolean", padding)
    text = data.replace("\r", "").replace("\n", "")
    if not _ALPHABET.match(text):
        raise make_error("ValueError", "base64.decode: characters outside the Base64 alphabet")
    if padding:
        if len(text) % 4:
            raise make_error("ValueError", "base64.decode: input is not padded to 4 bytes")
    else:
        text = text.rstrip("=")
        if len(text) % 4 == 1:
            raise make_error("ValueError", "base64.decode: truncated input")
        text += "=" * (-len(text) % 4)
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        raise make_error("ValueError", f"base64.decode: {exc}") from None
