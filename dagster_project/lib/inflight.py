"""A few requests in flight at once: the per-object calls of one listing page.

A fetch step lists its objects one page at a time (each page names the next); the calls
a page then needs for each object (an MR's changes, a page's version history, an issue's
remote links) are independent of each other. Sending ``workers`` of them at once lets
the client parse one answer while the server prepares the next, instead of each side
waiting for the other. The answers come back in the objects' order and are stored by
the calling thread, so what a run stores does not depend on the order they arrived in.

A listing's next page is asked for while the current page's objects are fetched and
stored (``read_ahead``). Each source holds one semaphore of as many slots as its fetch
step may keep requests in flight, taken around every request whichever thread sends it:
read-ahead, per-object calls and bulk queries together never exceed the policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def in_order(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[fn(item) for item in items]`` with up to ``workers`` calls running at once.

    The first failure in the items' order is raised, as the serial loop would raise it;
    calls not started by then are cancelled, and those running are awaited, so no
    request outlives the call.
    """
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures = [pool.submit(fn, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


_END = object()


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """``items``, each next one produced on a worker thread while the caller handles the
    current one: a listing's next page is on its way while this page's objects are fetched
    and stored. The requests of both sides share the source's in-flight slots, so this
    adds no request in flight beyond the policy's.

    A failure producing an item is raised where the serial loop would raise it. Closed
    early, it waits for the item being produced (no request outlives the loop) and
    produces no more.
    """
    with ThreadPoolExecutor(max_workers=1) as worker:
        pending = worker.submit(next, items, _END)
        while (item := pending.result()) is not _END:
            pending = worker.submit(next, items, _END)
            yield item  # type: ignore[misc]
