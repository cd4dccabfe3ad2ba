"""Run-ahead loading in one background thread: the reader's pool reads and tf.data's batch
gathering both overlap the consumer this way (and evaluation's scoring may too).

Why its own module: the reader (`clipstore.reader`), the tf.data wrapper (`clipstore.tfdata`)
and evaluation all use it; in the reader it made a circle (reader -> tfdata -> reader).
"""
from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
V = TypeVar("V")


def prefetched(items: Iterable[T], load: Callable[[T], V], depth: int) -> Iterator[tuple[T, V]]:
    """Yield (item, load(item)) with up to `depth` loads running ahead in a background thread.

    depth <= 0 loads in the caller's thread. An exception in `load` (or in iterating `items`)
    is raised in the consumer. Closing the generator early waits for an in-flight load, which
    may be writing into a buffer the caller reuses next.
    """
    if depth <= 0:
        for it in items:
            yield it, load(it)
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def worker() -> None:
        try:
            for it in items:
                if stop.is_set():
                    return
                q.put((it, load(it), None))
        except BaseException as e:  # surfaced in the consumer
            q.put((None, None, e))
            return
        q.put(None)

    t = threading.Thread(target=worker, daemon=True, name="clipstore-prefetch")
    t.start()
    try:
        while True:
            got = q.get()
            if got is None:
                return
            it, val, err = got
            if err is not None:
                raise err
            yield it, val
    finally:
        stop.set()
        # wait for an in-flight load (it writes into a pool buffer the next epoch reuses);
        # at interpreter shutdown daemon threads are frozen and would never finish
        while t.is_alive() and not sys.is_finalizing():
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)
