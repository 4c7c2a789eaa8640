"""A few requests in flight at once: the per-object calls of one listing page.

A fetch step lists its objects one page at a time (each page names the next); the calls
a page then needs for each object (an MR's changes, a page's version history, an issue's
remote links) are independent of each other. Sending ``workers`` of them at once lets
the client parse one answer while the server prepares the next, instead of each side
waiting for the other. The answers come back in the objects' order and are stored by
the calling thread, so what a run stores does not depend on the order they arrived in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
