"""Conformance: try / retry / except, error values and tags, HTTP errors."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from tests.engine.enginetest import Loopback, error_of, result_of, run, services
from wfgen.engine import (
    HttpRequest,
    Services,
    VirtualClock,
    WorkflowSyntaxError,
    load_workflow,
    make_error,
)


def wf(text: str) -> str:
    return textwrap.dedent(text)


RETRY = wf("""
main:
  params: [max]
  steps:
    - init:
        assign:
          - n: 0
    - t:
        try:
          steps:
            - count:
                assign:
                  - n: ${n + 1}
            - fail:
                raise: {"message": "nope", "tags": ["MyError"]}
        retry:
          predicate: ${always_retry}
          max_retries: ${max}
          backoff:
            initial_delay: 1
            max_delay: 5
            multiplier: 2
        except:
          as: e
          steps:
            - done:
                return: ${[n, e.tags]}
always_retry:
  params: [e]
  steps:
    - yes:
        return: true
""")


def test_retry_count_and_backoff() -> None:
    clock = VirtualClock()
    res = run(RETRY, 4, services=Services(clock=clock))
    assert res.result == [5, ["MyError"]]  # 1 attempt + 4 retries
    assert clock.slept == [1.0, 2.0, 4.0, 5.0]  # doubled, capped at max_delay


def test_zero_retries() -> None:
    clock = VirtualClock()
    assert run(RETRY, 0, services=Services(clock=clock)).result == [1, ["MyError"]]
    assert clock.slept == []


def test_retries_are_billed_steps() -> None:
    one = run(RETRY, 0).steps_internal
    three = run(RETRY, 2).steps_internal
    # each retry re-runs `count` and `fail` and calls the predicate (1 step)
    assert three - one == 2 * 3


def test_predicate_false_means_no_retry() -> None:
    src = RETRY.replace("return: true", "return: false")
    clock = VirtualClock()
    assert run(src, 5, services=Services(clock=clock)).result == [1, ["MyError"]]
    assert clock.slept == []


def test_predicate_must_return_boolean() -> None:
    src = RETRY.replace("return: true", 'return: "yes"')
    err = error_of(src, 3)
    assert "TypeError" in err.tags


def test_retry_without_except_reraises_last_error() -> None:
    head = RETRY.split("        except:")[0]
    src = head + RETRY.split("                return: ${[n, e.tags]}\n")[1]
    err = error_of(src, 2)
    assert err.value == {"message": "nope", "tags": ["MyError"]}
    assert err.step == "fail"


def test_except_scope_and_as() -> None:
    src = wf("""
    - init:
        assign:
          - outer: 1
    - t:
        try:
          assign:
            - x: ${1 / 0}
        except:
          as: e
          steps:
            - handle:
                assign:
                  - outer: ${e.tags}
                  - inner: 2
    - r:
        return: ${outer}
    """)
    assert result_of(src) == ["ZeroDivisionError"]
    # reading them after the except block is a deploy error (reference/syntax/variables)
    for name in ("inner", "e"):
        with pytest.raises(WorkflowSyntaxError, match=f"variable '{name}' exists only in the "
                                                      "except block of step 't'"):
            load_workflow(src.replace("return: ${outer}", f"return: ${{{name}}}"), "t.yaml")


@pytest.mark.parametrize(
    ("body", "tag"),
    [
        ("${m.missing}", "KeyError"),
        ("${l[5]}", "IndexError"),
        ('${1 + true}', "TypeError"),
        ("${1 / 0}", "ZeroDivisionError"),
        ('${int("x")}', "ValueError"),
    ],
)
def test_error_tags_are_catchable(body: str, tag: str) -> None:
    src = wf(f"""
    - init:
        assign:
          - m: {{}}
          - l: [1]
    - t:
        try:
          assign:
            - x: {body}
        except:
          as: e
          steps:
            - r:
                return: ${{e.tags}}
    """)
    assert tag in result_of(src)


def test_except_can_return_and_next_beside_try() -> None:
    src = wf("""
    - t:
        try:
          raise: "x"
        except:
          as: e
          steps:
            - noop:
                assign:
                  - got: ${e}
        next: after
    - skipped:
        return: "no"
    - after:
        return: "after"
    """)
    assert result_of(src) == "after"


def test_raise_in_except_propagates_with_its_step() -> None:
    src = wf("""
    - t:
        try:
          raise: "first"
        except:
          as: e
          steps:
            - again:
                raise: ${"second after " + e}
    """)
    err = error_of(src)
    assert err.value == "second after first" and err.step == "again"


def test_http_error_code_and_default_retry(loopback: Loopback) -> None:
    loopback.status_for["/flaky"] = 503
    loopback.status_for["/missing"] = 404
    src = wf("""
    main:
      params: [path]
      steps:
        - t:
            try:
              call: http.get
              args:
                url: ${"https://example.com" + path}
              result: r
            retry: ${http.default_retry}
            except:
              as: e
              steps:
                - r:
                    return: ${[e.code, e.tags]}
    """)
    clock = VirtualClock()
    out = run(src, "/flaky", services=services(loopback, clock=clock))
    assert out.result == [503, ["HttpError"]]
    assert len(loopback.requests) == 6  # 1 + default_retry's 5 retries
    assert len(clock.slept) == 5
    assert out.steps_external == 6
    loopback.requests.clear()
    out = run(src, "/missing", services=services(loopback))
    assert out.result == [404, ["HttpError"]]
    assert len(loopback.requests) == 1  # 404 is not retried


class FailingTransport:
    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.calls = 0

    def send(self, request: HttpRequest) -> Any:
        self.calls += 1
        raise make_error(self.tag, f"simulated {self.tag} for {request.url}")


@pytest.mark.parametrize("tag", ["ConnectionError", "TimeoutError"])
def test_transport_errors_are_tagged_and_retried(tag: str) -> None:
    src = wf("""
    - t:
        try:
          call: http.get
          args:
            url: https://example.com/x
        retry:
          predicate: ${http.default_retry_predicate}
          max_retries: 2
          backoff:
            initial_delay: 0.5
            max_delay: 1
            multiplier: 2
    """)
    transport = FailingTransport(tag)
    clock = VirtualClock()
    res = run(src, services=Services(clock=clock, http_transport=transport))
    assert res.state == "FAILED" and tag in res.error.tags
    assert transport.calls == 3
    assert clock.slept == [0.5, 1.0]
