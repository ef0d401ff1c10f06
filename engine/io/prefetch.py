"""Make the next item of an iterator on another thread while the caller uses this one.

Arrow parses CSV, matches and casts with the GIL released, so the next chunk of an
events file can be read while the main thread decides on the leads of the previous
one: on two cores the read then mostly hides behind the evaluation. Items come in the
same order with the same content as from the iterator itself; at most ``depth`` items
wait (memory stays bounded); an exception in the producer is raised to the consumer
at the point it happened; closing the consumer stops the producer.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """``items``, produced up to ``depth`` ahead on a daemon thread."""
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as error:  # handed to the consumer, which raises it
            slots.put(_Failure(error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="engine-io-prefetch", daemon=True)
    worker.start()
    return _consume(slots, stop, worker)


def _consume(slots: queue.Queue[Any], stop: threading.Event, worker: threading.Thread) -> Iterator[Any]:
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.05)
        worker.join()
