"""Threads that run executions, kept for the next one. Starting a thread costs
more than running a small workflow, and `wfgen serve` starts executions by the
thousand; an execution may also wait for hours (a VM, a callback), so the pool
never makes one execution wait for another: with no idle thread, a new one is
started. A thread idle for `idle_s` seconds ends."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

Task = tuple[Callable[..., Any], tuple[Any, ...], str]


class Workers:
    """An elastic pool: submit() runs fn(*args) on an idle thread or a new one."""

    def __init__(self, idle_s: float = 30.0) -> None:
        self.idle_s = idle_s
        self._tasks: queue.SimpleQueue[Task] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a task, less the tasks queued for them

    def submit(self, fn: Callable[..., Any], *args: Any, name: str = "wfgen-worker") -> None:
        with self._lock:
            spare = self._idle > 0
            if spare:
                self._idle -= 1  # that thread is now promised to this task
        if spare:
            self._tasks.put((fn, args, name))
        else:
            threading.Thread(target=self._serve, args=((fn, args, name),), name=name,
                             daemon=True).start()

    def _serve(self, task: Task) -> None:
        me = threading.current_thread()
        while True:
            fn, args, me.name = task
            fn(*args)  # the caller's fn handles its own errors (LocalBackend._work does)
            del fn, args, task
            with self._lock:
                self._idle += 1
            while True:
                try:
                    task = self._tasks.get(timeout=self.idle_s)
                    break
                except queue.Empty:
                    with self._lock:
                        if self._idle > 0:  # no task is promised to a thread like me
                            self._idle -= 1
                            return
                    # a task was promised meanwhile: it is (about to be) in the queue
