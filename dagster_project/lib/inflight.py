"""A few requests in flight at once: the per-object calls of one listing page.

A fetch step lists its objects one page at a time (each page names the next); the calls
a page then needs for each object (an MR's changes, a page's version history, an issue's
remote links) are independent of each other. Sending ``workers`` of them at once lets
the client parse one answer while the server prepares the next, instead of each side
waiting for the other. The answers come back in the objects' order and are stored by
the calling thread, so what a run stores does not depend on the order they arrived in.

A listing's next page is asked for while the current page's objects are fetched and
stored (``read_ahead``), and per-scope listings (a GitLab project's deployments,
commits, tree and tags) are read for the next scopes while one is stored (``ahead``).
Each source holds one semaphore of as many slots as its fetch
step may keep requests in flight, taken around every request whichever thread sends it:
read-ahead, per-object calls and bulk queries together never exceed the policy.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
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


def ahead(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``fn(item)`` for each item, in order, as the caller takes them, with up to
    ``workers`` calls started ahead of it: the next projects' listings are read while
    this one's are stored. At most ``workers`` results wait to be taken.

    A failure is raised where the serial loop would raise it. Closed early (or failed),
    it waits for the calls on their way, at most ``workers``, and starts no more: no
    request outlives the loop.
    """
    items = iter(items)
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[R]] = deque(pool.submit(fn, i) for i in islice(items, workers))
        while pending:
            result = pending.popleft().result()
            pending.extend(pool.submit(fn, i) for i in islice(items, 1))
            yield result


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


def offset_pages(
    fetch: Callable[[int], tuple[list[T], int | None]], workers: int
) -> Iterator[tuple[list[T], int | None]]:
    """The pages of a listing paged by offset (Jira Server's ``startAt``), in order, with
    up to ``workers`` of them asked for at once. ``fetch(start)`` returns a page's items
    and the total the server reports.

    The first page, asked for alone, gives the page size (the server may grant fewer
    items than asked for) and the total; the offsets after it follow from both. A listing
    that moves while it is read is read as one page at a time would read it: the total
    of the page just taken decides where it ends, and a page shorter than the first
    before that end (the server granted fewer) is continued from where it stopped, the
    pages asked for beyond it dropped. Without a total, one page at a time.
    """
    items, total = fetch(0)
    yield items, total
    size, end = len(items), len(items)
    if not items:
        return
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        ahead: deque[tuple[int, Future[tuple[list[T], int | None]]]] = deque()
        following = end
        try:
            while True:
                room = workers if total is not None else 1
                while len(ahead) < room and (total is None or following < total):
                    ahead.append((following, pool.submit(fetch, following)))
                    following += size
                if not ahead:
                    return
                start, future = ahead.popleft()
                items, reported = future.result()
                yield items, reported
                total = reported
                end = start + len(items)
                if not items or (total is not None and end >= total):
                    return
                if len(items) != size or total is None:
                    _drop(ahead)  # offsets computed from a size this page did not keep
                    following = end
        finally:
            _drop(ahead)


def _drop(ahead: deque) -> None:
    """Cancel the pages asked for ahead; those already on the wire are awaited (no
    request outlives the listing) and their answers dropped."""
    while ahead:
        _, future = ahead.popleft()
        if not future.cancel():
            future.exception()
