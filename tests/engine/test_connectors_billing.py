"""Connector registry (googleapis.*, events.*) and step accounting (billing model)."""

from __future__ import annotations

import textwrap
import threading
from typing import Any

from tests.engine.enginetest import Loopback, error_of, run, services
from wfgen.engine import (
    ConnectorRegistry,
    ConnectorResult,
    FunctionRef,
    Services,
    execute,
    load_workflow,
    make_error,
)
from wfgen.engine.runtime import is_internal_host


def wf(text: str) -> str:
    return textwrap.dedent(text)


INSERT = wf("""
- insert:
    call: googleapis.compute.v1.instances.insert
    args:
      project: p
      zone: z
      body:
        name: vm-1
      connector_params:
        timeout: 60
    result: op
- r:
    return: ${op}
""")


def test_unregistered_connector_names_itself() -> None:
    err = error_of(INSERT)
    assert err.step == "insert"
    assert "googleapis.compute.v1.instances.insert" in err.message
    assert "NotImplementedError" in err.tags


def test_unregistered_events_function_names_itself() -> None:
    err = error_of("- c:\n    call: events.create_callback_endpoint\n    args: {}\n")
    assert "events.create_callback_endpoint" in err.message


def test_registered_connector_gets_args_and_connector_params() -> None:
    seen: dict[str, Any] = {}

    def insert(rt: Any, connector_params: dict, **args: Any) -> ConnectorResult:
        seen.update(args=args, params=connector_params, env=rt.env["GOOGLE_CLOUD_PROJECT_ID"])
        return ConnectorResult({"status": "DONE", "name": args["body"]["name"]},
                               polling_steps=3)

    reg = ConnectorRegistry()
    reg.register("googleapis.compute.v1.instances.insert", insert)
    res = run(INSERT, connectors=reg)
    assert res.state == "SUCCEEDED"
    assert res.result == {"status": "DONE", "name": "vm-1"}
    assert seen["args"] == {"project": "p", "zone": "z", "body": {"name": "vm-1"}}
    assert seen["params"] == {"timeout": 60}
    assert seen["env"] == "local-project"
    # 2 steps + 3 polling attempts, all internal (connector calls are internal)
    assert (res.steps_internal, res.steps_external) == (5, 0)


def test_connector_errors_are_catchable() -> None:
    def get(rt: Any, connector_params: dict, **args: Any) -> Any:
        raise make_error("HttpError", "instance not found", code=404)

    src = wf("""
    - t:
        try:
          call: googleapis.compute.v1.instances.get
          args: {project: p, zone: z, instance: gone}
        except:
          as: e
          steps:
            - r:
                return: ${e.code}
    """)
    res = run(src, connectors={"googleapis.compute.v1.instances.get": get})
    assert res.result == 404


def test_events_callback_roundtrip_and_timeout_retry() -> None:
    """A callback await that times out can be caught and awaited again (docs)."""
    calls = {"await": 0}

    def create(rt: Any, connector_params: dict, http_callback_method: str = "POST") -> Any:
        return {"url": "https://workflowexecutions.googleapis.com/v1/x/callbacks/1"}

    def await_cb(rt: Any, connector_params: dict, callback: dict, timeout: float = 43200) -> Any:
        calls["await"] += 1
        if calls["await"] == 1:
            raise make_error("TimeoutError", "no callback yet")
        return {"http_request": {"body": {"exit_code": 0}}, "type": "HTTP"}

    src = wf("""
    - create:
        call: events.create_callback_endpoint
        args:
          http_callback_method: POST
        result: cb
    - wait:
        try:
          call: events.await_callback
          args:
            callback: ${cb}
            timeout: 600
          result: req
        except:
          as: e
          steps:
            - again:
                switch:
                  - condition: ${"TimeoutError" in e.tags}
                    next: wait
    - r:
        return: ${req.http_request.body.exit_code}
    """)
    res = run(src, connectors={"events.create_callback_endpoint": create,
                               "events.await_callback": await_cb})
    assert res.state == "SUCCEEDED", res.error
    assert res.result == 0 and calls["await"] == 2


def test_step_counts_internal_and_external(loopback: Loopback) -> None:
    src = wf("""
    - a:
        assign:
          - x: 1
    - ext:
        call: http.get
        args:
          url: https://example.com/a
    - google:
        call: http.get
        args:
          url: https://storage.googleapis.com/b
    - inline:
        call: http.get
        args:
          url: https://api.example.org/c
        result: y
    - loop:
        for:
          value: v
          in: [1, 2]
          steps:
            - s:
                assign:
                  - x: ${x + v}
    - r:
        return: ${x}
    """)
    res = run(src, services=services(loopback))
    assert res.state == "SUCCEEDED", res.error
    # steps run: a, ext, google, inline, loop, s, s, r = 8; ext + inline are external
    assert (res.steps_internal, res.steps_external) == (6, 2)


def test_google_hosts_are_internal() -> None:
    assert is_internal_host("compute.googleapis.com")
    assert is_internal_host("my-svc-abc.a.run.app")
    assert is_internal_host("us-central1-p.cloudfunctions.net")
    assert not is_internal_host("example.com")
    assert not is_internal_host("googleapis.com.evil.example")


def test_function_reference_call_from_builtin_services() -> None:
    """rt.call_function runs a subworkflow or builtin of the running execution."""
    from wfgen.engine.stdlib import BUILTINS

    def apply(rt: Any, fn: Any, x: Any) -> Any:
        return rt.call_function(fn, [x])

    BUILTINS["test_only.apply"] = apply
    try:
        src = wf("""
        main:
          steps:
            - r:
                return: ${[test_only.apply(double_it, 21), test_only.apply("len", "abc")]}
        double_it:
          params: [n]
          steps:
            - d:
                return: ${n * 2}
        """)
        res = run(src)
        assert res.result == [42, 3], res.error
        assert isinstance(FunctionRef("x"), FunctionRef)
    finally:
        del BUILTINS["test_only.apply"]


def test_concurrent_executions_do_not_interfere() -> None:
    wfo = load_workflow(wf("""
    main:
      params: [n]
      steps:
        - init:
            assign:
              - total: 0
        - loop:
            for:
              value: v
              range: ${[1, n]}
              steps:
                - add:
                    assign:
                      - total: ${total + v}
        - r:
            return: ${total}
    """), "c.yaml")
    results: dict[int, Any] = {}

    def go(n: int) -> None:
        results[n] = execute(wfo, n, services=Services()).result

    threads = [threading.Thread(target=go, args=(n,)) for n in range(100, 110)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {n: n * (n + 1) // 2 for n in range(100, 110)}


def test_a_crashing_connector_fails_the_execution_naming_the_step() -> None:
    def broken(rt: Any, connector_params: dict, **args: Any) -> Any:
        raise RuntimeError("bug in connector")

    src = "- a:\n    call: googleapis.x.v1.y.z\n    args: {}\n"
    res = run(src, connectors={"googleapis.x.v1.y.z": broken})
    assert res.state == "FAILED"
    assert res.error.tags == ["InternalError"] and res.error.step == "a"
    assert "bug in connector" in res.error.message


def test_connectors_see_the_cancel_event() -> None:
    from wfgen.engine import prepare

    started = threading.Event()

    def wait_forever(rt: Any, connector_params: dict, **args: Any) -> Any:
        started.set()
        while not rt.cancel_event.wait(0.01):
            pass
        raise make_error("TimeoutError", "cancelled while waiting")

    exe = prepare(load_workflow("- w:\n    call: events.await_callback\n    args: {}\n", "w"),
                  connectors={"events.await_callback": wait_forever})
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(exe.run(None)))
    t.start()
    assert started.wait(5)
    exe.cancel()
    t.join(5)
    assert out and out[0].state == "CANCELLED"


def test_a_connector_marked_bills_external_counts_even_when_it_raises() -> None:
    def await_callback(rt: Any, connector_params: Any = None, **_: Any) -> Any:
        raise make_error("TimeoutError", "no callback")

    await_callback.bills_external = True  # type: ignore[attr-defined]
    text = wf("""
    - wait:
        try:
          call: events.await_callback
          args: {callback: {url: "x"}, timeout: 1}
        except:
          as: e
          steps:
            - done:
                return: ${e.tags}
    """)
    res = execute(load_workflow(text, "w.yaml"), None, services=Services(),
                  connectors={"events.await_callback": await_callback})
    assert res.result == ["TimeoutError"]
    assert res.steps_external == 1
    assert res.steps_internal + res.steps_external == 2
