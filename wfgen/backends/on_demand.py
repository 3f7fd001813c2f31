"""Things built on first use. The local backend's Compute Engine and callback
server cost a docker probe, a loopback server and many imports, and most
workflows call neither: `OnDemand` builds a value once, on the first thread
that asks for it, and `DeferredConnector` is a connector that reaches its
owner only when a workflow calls it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class OnDemand(Generic[T]):
    """A value built by `build()` the first time get() is called (thread-safe)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> T | None:
        """The value if it was built already, else None (never builds it)."""
        return self._value

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value


class DeferredConnector:
    """A connector calling `owner().<method>`: the owner is made when first called."""

    def __init__(self, owner: Callable[[], Any], method: str) -> None:
        self.owner = owner
        self.method = method

    def __call__(self, rt: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.owner(), self.method)(rt, *args, **kwargs)
