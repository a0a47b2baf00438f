"""Writer threads: store one generator batch's cases while the next batch samples.

Turning a sampled series into a stored case (DICOM bytes, files, a database transaction)
spends most of its time outside the GIL (file and socket I/O, numpy), and so does torch's
sampling; on a GPU the sampler mostly waits for the device. A worker therefore hands each
case to a few long-lived threads and goes on sampling.

A thread of its own (not ``concurrent.futures.ThreadPoolExecutor``) so that each thread can
run ``on_exit`` when it ends: Django keeps one database connection per thread, and a
worker's writer threads must close theirs rather than leak one per task.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_STOP = None


class Writers:
    """``threads`` threads that take submitted calls in the order they came; with 0, each
    call runs in the caller's thread at ``submit`` (a test inside a database transaction
    needs that: other threads' connections cannot see its rows)."""

    def __init__(self, threads: int, *, on_exit: Callable[[], None] = lambda: None) -> None:
        if threads < 0:
            raise ValueError("threads must be 0 or more")
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._on_exit = on_exit
        self._threads = [
            threading.Thread(target=self._serve, name=f"gantry-writer-{number}", daemon=True)
            for number in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, call: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        if self._threads:
            self._queue.put((future, call, args))
        else:
            _run(future, call, args)
        return future

    def close(self) -> None:
        """Finish every submitted call, then end the threads."""
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> Writers:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        try:
            while (item := self._queue.get()) is not _STOP:
                _run(*item)
        finally:
            self._on_exit()


def _run(future: Future, call: Callable[..., Any], args: tuple) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(call(*args))
    except BaseException as exc:  # handed to whoever waits on the future
        future.set_exception(exc)
