"""Connectors and `events.*`: supplied by whoever runs the engine.

The engine knows no Google API by itself. A runner (the local runtime, a test)
registers Python callables under the Workflows names they implement:

    reg = ConnectorRegistry()
    reg.register("googleapis.compute.v1.instances.insert", insert)
    reg.register("events.await_callback", await_callback)
    execute(wf, arg, connectors=reg)

A connector is called as `fn(rt, connector_params=..., **args)`: `rt` is the
services object (clock, env, log, http), `args` are the call step's `args` minus
`connector_params`, which is passed separately (a dict, {} when absent; its
documented keys are timeout, polling_policy {initial_delay, multiplier,
max_delay} and skip_polling). Return the result value, or a ConnectorResult
to bill extra internal steps (a long-running operation's polling attempts are
billed steps). Raise wfgen.engine.errors.WorkflowError (make_error) for the
documented failures: HttpError with `code` for HTTP statuses (404 for a
missing instance), OperationError for a failed operation, TimeoutError.

A connector that waits (an operation, a callback) should wait with
`rt.clock.sleep` (cancellable, and instant on a VirtualClock) or poll
`rt.cancel_event` (a threading.Event set when the execution is cancelled).

A connector function with the attribute `bills_external = True` bills every
call as an external step, whether it returns or raises (the local runtime marks
`events.await_callback` so, as the pricing page lists callback waits).

Calling a `googleapis.*` or `events.*` name that nobody registered raises an
error naming it, tagged NotImplementedError."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wfgen.engine.errors import make_error

Connector = Callable[..., Any]
CONNECTOR_PREFIXES = ("googleapis.", "events.")


@dataclass
class ConnectorResult:
    """A connector's value plus billing it wants reported (e.g. polling steps)."""

    value: Any
    polling_steps: int = 0
    external: bool = False  # bill the call itself as an external step


class ConnectorRegistry:
    """Name -> callable; thread-safe to read while executions run."""

    def __init__(self, connectors: dict[str, Connector] | None = None) -> None:
        self._fns: dict[str, Connector] = dict(connectors or {})
        self._lock = threading.Lock()

    def register(self, name: str, fn: Connector) -> None:
        with self._lock:
            self._fns[name] = fn

    def get(self, name: str) -> Connector | None:
        return self._fns.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._fns


def is_connector_name(name: str) -> bool:
    return name.startswith(CONNECTOR_PREFIXES)


def missing_connector(name: str) -> Exception:
    kind = "connector" if name.startswith("googleapis.") else "function"
    return make_error(
        "NotImplementedError",
        f"{kind} {name} is not available in this runtime: nothing registered it "
        "(connectors and events.* are supplied by the runner; see wfgen/engine/connectors.py)",
    )


def as_registry(connectors: ConnectorRegistry | dict[str, Connector] | None) -> ConnectorRegistry:
    if connectors is None:
        return ConnectorRegistry()
    if isinstance(connectors, ConnectorRegistry):
        return connectors
    return ConnectorRegistry(connectors)
