"""Reused threads (wfgen.backends.workers) and things built on first use
(wfgen.backends.on_demand): a task never waits for another, idle threads take
the next task and end when idle long enough, and a value is built once however
many threads ask at once."""

from __future__ import annotations

import threading
import time

from wfgen.backends.on_demand import DeferredConnector, OnDemand
from wfgen.backends.workers import Workers


def _wait_until(check, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


def test_a_blocked_task_never_holds_up_the_next() -> None:
    pool = Workers()
    release = threading.Event()
    second_ran = threading.Event()
    pool.submit(release.wait, 30)  # an execution waiting for hours, say
    pool.submit(second_ran.set)
    assert second_ran.wait(10)
    release.set()


def test_an_idle_thread_takes_the_next_task() -> None:
    pool = Workers()
    seen: list[threading.Thread] = []
    for _ in range(20):
        done = threading.Event()
        pool.submit(lambda d=done: (seen.append(threading.current_thread()), d.set()))
        assert done.wait(10)
        assert _wait_until(lambda: pool._idle == 1)  # the thread is back, waiting
    assert len({id(t) for t in seen}) == 1


def test_each_task_runs_under_its_own_name() -> None:
    pool = Workers()
    names: list[str] = []
    for name in ("wfgen-one", "wfgen-two"):
        done = threading.Event()
        pool.submit(lambda d=done: (names.append(threading.current_thread().name), d.set()),
                    name=name)
        assert done.wait(10)
    assert names == ["wfgen-one", "wfgen-two"]


def test_idle_threads_end() -> None:
    pool = Workers(idle_s=0.05)
    done = threading.Event()
    ran: list[threading.Thread] = []
    pool.submit(lambda: (ran.append(threading.current_thread()), done.set()))
    assert done.wait(10)
    assert _wait_until(lambda: not ran[0].is_alive())
    assert pool._idle == 0
    again = threading.Event()
    pool.submit(again.set)  # a new thread, since none is idle
    assert again.wait(10)


def test_many_tasks_at_once_all_run() -> None:
    pool = Workers(idle_s=0.2)
    count = 500
    left = [count]
    lock = threading.Lock()
    finished = threading.Event()

    def task() -> None:
        with lock:
            left[0] -= 1
            if left[0] == 0:
                finished.set()

    starters = [threading.Thread(target=lambda: [pool.submit(task) for _ in range(count // 5)])
                for _ in range(5)]
    for t in starters:
        t.start()
    for t in starters:
        t.join()
    assert finished.wait(30), left


def test_on_demand_builds_once_for_many_threads() -> None:
    built: list[int] = []
    gate = threading.Barrier(8)

    def build() -> object:
        built.append(1)
        time.sleep(0.05)
        return object()

    value = OnDemand(build)
    assert value.built is None
    got: list[object] = []
    threads = [threading.Thread(target=lambda: (gate.wait(), got.append(value.get())))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len({id(v) for v in got}) == 1 and value.built is got[0]


def test_a_deferred_connector_builds_its_owner_only_when_called() -> None:
    class Owner:
        def insert(self, rt: object, connector_params: object = None, **args: object) -> object:
            return {"rt": rt, "args": args}

    made: list[Owner] = []
    owner = OnDemand(lambda: made.append(Owner()) or made[-1])
    connector = DeferredConnector(owner.get, "insert")
    assert made == []
    assert connector("rt", connector_params={}, zone="z") == {"rt": "rt", "args": {"zone": "z"}}
    assert len(made) == 1
