"""Confluence ingestion through atlassian-python-api (REST v1), incremental and lossless.

The client is built with ``cloud=False`` so production and the sandbox run the same v1
class (the host-based default gives ``*.atlassian.net`` a v2 class that 404s on these
calls). Its ``_get_paged`` generators are never used: they resolve ``_links.next``
against the site root and lose ``/wiki`` on page 2. Listings start with explicit
``start``/``limit`` and follow ``_links.next`` re-rooted on the configured URL, which
keeps the context path and Cloud's cursors, and never sends credentials to a host
named in a response. The client's own Retry-After wait is off and
``backoff_and_retry`` (unbounded on resets) is never enabled: every request goes
through ``lib/retry.py``.

One run:

* spaces: the whole (scoped) listing, unchanged ones not stored again, vanished ones
  tombstoned;
* pages: CQL ``type = page [AND space in (...)] [AND lastmodified >= "..."] ORDER BY
  lastmodified ASC`` at ``/content/search`` with bodies, version, labels, ancestors,
  space and history expanded. The date is the watermark minus the overlap, in the
  searching user's time zone (read from ``/user/current``; when the server does not
  say, the query reaches 12 hours further back, which covers every zone). Each
  listing page commits with the watermark it covers (the latest ``version.when``);
* versions: the listing carries each page's current version (number, author, date,
  message, body), stored as that version; for a page whose version number differs
  from the stored one, its history (``/content/{id}/version``) only when a version
  below the current one is not stored yet, and only until every such version was seen.
  Versions are immutable, so stored ones are never fetched again: a page at version 1,
  or edited once between two runs, costs no history request;
* listings: the pages' ``totalSize``, and for versions the sum of ``version.number``
  over current pages (how many versions Confluence says exist) against those stored;
* reconciliation every ``reconcile_every_days``: a keys-only listing tombstones
  deleted pages with their versions, and fetches pages listed but never stored
  (one skipped while edits shifted the offsets under a paged listing).

A page without id, version number or ``version.when``, or with an unparseable date, is
quarantined with the reason; so is such a version. The run goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from atlassian import Confluence
from pydantic import ValidationError, field_validator

from dagster_project.lib.connections import Connection
from dagster_project.lib.inflight import in_order, read_ahead
from dagster_project.lib.policy import Policy
from dagster_project.lib.rawstore import Batch, Quarantined, RawObject, RawStore
from dagster_project.lib.retry import SourceError, status_of, with_retries
from dagster_project.lib.sources.payloads import Lenient, Timestamp, validation_reason
from dagster_project.lib.sources.timeparse import parse_ts, query_time

CQL_TIME = "%Y/%m/%d %H:%M"
PAGE_EXPAND = "body.storage,version,metadata.labels,ancestors,space,history"
VERSION_EXPAND = "content.body.storage"
KEYS_LIMIT = 200  # ids only: the largest page Confluence serves without bodies
# UTC-12:00 is the westernmost zone: a date read in an unknown zone is at most this late.
UNKNOWN_ZONE_MARGIN_MIN = 12 * 60
RECONCILE = "reconcile"
VERSION = "version"  # a page's version number, kept beside it for the next fetch


# -- what the product reads of a page or version, validated before it is stored ------------
class _When(Lenient):
    number: int
    when: Timestamp


class PagePayload(Lenient):
    id: str
    version: _When

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if isinstance(v, str) and not v.strip():
            raise ValueError("empty id")
        return v


class VersionPayload(_When):
    pass


def check_page(raw: Any) -> tuple[PagePayload | None, str | None]:
    """The validated page, or None and the reason it is quarantined."""
    try:
        return PagePayload.model_validate(raw), None
    except ValidationError as exc:
        return None, validation_reason(exc)


def check_version(raw: Any) -> tuple[VersionPayload | None, str | None]:
    try:
        return VersionPayload.model_validate(raw), None
    except ValidationError as exc:
        return None, validation_reason(exc)


def cql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- the client --------------------------------------------------------------------------
@dataclass
class ConfluenceFetchResult:
    spaces: int = 0
    search_pages: int = 0
    pages_listed: int = 0
    histories_fetched: int = 0  # pages whose version history was requested
    vanished: int = 0  # listed, then gone (404) before their history was read
    recovered: int = 0  # listed by reconciliation but never stored before
    reconciled: bool = False
    reported_total: int | None = None
    full: bool = False
    time_zone: str | None = None  # the zone incremental CQL dates were written in


class ConfluenceSource:
    """One run's view of a Confluence instance (Cloud or Server/DC) through REST v1."""

    def __init__(self, conn: Connection, policy: Policy):
        self.conn = conn
        self.policy = policy
        self.page_size = policy.ingest.page_size
        self.base = conn.url.rstrip("/")
        self._secrets = (conn.token,)
        # An empty user means a personal access token, sent as Bearer.
        auth = (
            {"username": conn.user, "password": conn.token} if conn.user else {"token": conn.token}
        )
        self.client = Confluence(
            url=self.base,
            cloud=False,
            timeout=conn.timeout_s,
            retry_with_header=False,  # lib/retry.py honours Retry-After, boundedly
            backoff_and_retry=False,
            **auth,
        )
        self.requests = 0
        self._counting = threading.Lock()
        # Version histories of one listing page fetched at once (lib/inflight.py); every
        # request of the step, whichever thread sends it, takes one of as many slots.
        self.in_flight = policy.operations.step_requests("confluence")
        self.slots = threading.BoundedSemaphore(self.in_flight)
        self._zone_read = False
        self._zone: str | None = None

    # -- requests ---------------------------------------------------------------------
    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET a path under the configured URL (or a URL on its host), bounded retries."""
        absolute = path.startswith(("http://", "https://"))

        def call() -> Any:
            with self._counting:
                self.requests += 1
            with self.slots:
                response = self.client.get(
                    path, params=params, absolute=absolute, advanced_mode=True
                )
            self.client.raise_for_status(response)
            return response.json()

        what = urlsplit(path).path if absolute else path
        return with_retries(
            call,
            what=f"confluence GET {what}",
            policy=self.conn.retry_policy,
            secrets=self._secrets,
        )

    def _next_url(self, link: str) -> str:
        """``_links.next`` on the configured URL: it is relative to ``_links.base`` (the
        context path included), and a host named by the server is never trusted."""
        at = link.find("/rest/api/")
        if at < 0:
            raise SourceError(f"confluence: unexpected next link {link[:120]!r}")
        return self.base + link[at:]

    def paged(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every answer of a v1 listing: explicit start/limit, then ``_links.next``."""
        answer = self.get_json(path, params)
        followed: set[str] = set()
        while True:
            if not isinstance(answer, dict):
                raise SourceError(f"confluence GET {path}: not a JSON object")
            yield answer
            link = (answer.get("_links") or {}).get("next")
            if not link or not answer.get("results"):
                return
            url = self._next_url(link)
            if url in followed:
                raise SourceError(f"confluence GET {path}: the next link repeats itself")
            followed.add(url)
            answer = self.get_json(url)

    def user_time_zone(self) -> str | None:
        """The zone CQL dates are read in; None when the server does not tell."""
        if not self._zone_read:
            self._zone_read = True
            try:
                me = self.get_json("rest/api/user/current")
            except SourceError:
                me = None
            name = me.get("timeZone") if isinstance(me, dict) else None
            try:
                self._zone = str(ZoneInfo(name)) if isinstance(name, str) and name else None
            except (ZoneInfoNotFoundError, ValueError):
                self._zone = None
        return self._zone

    # -- listings ---------------------------------------------------------------------
    def spaces(self) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"start": 0, "limit": self.page_size}
        if self.policy.scope.confluence_spaces:
            params["spaceKey"] = list(self.policy.scope.confluence_spaces)
        yield from self.paged("rest/api/space", params)

    def scope_cql(self) -> str:
        spaces = self.policy.scope.confluence_spaces
        where = "type = page"
        if spaces:
            where += f" AND space in ({', '.join(cql_string(s) for s in spaces)})"
        return where

    def page_cql(self, since: datetime | None) -> str:
        """Pages in scope, changed since ``since`` (minus the overlap) when given."""
        where = self.scope_cql()
        if since is not None:
            zone = self.user_time_zone()
            overlap = self.policy.ingest.overlap_minutes
            if zone is None:
                overlap += UNKNOWN_ZONE_MARGIN_MIN
            when = query_time(since, overlap_minutes=overlap, tz=zone or "UTC", fmt=CQL_TIME)
            where += f' AND lastmodified >= "{when}"'
        return f"{where} ORDER BY lastmodified ASC"

    def search(
        self, cql: str, *, expand: str | None = PAGE_EXPAND, limit: int | None = None
    ) -> Iterator[tuple[list[Any], int | None]]:
        """(results, totalSize) for each page of a CQL content search."""
        params: dict[str, Any] = {"cql": cql, "start": 0, "limit": limit or self.page_size}
        if expand:
            params["expand"] = expand
        for answer in self.paged("rest/api/content/search", params):
            total = answer.get("totalSize")
            yield answer.get("results") or [], total if isinstance(total, int) else None

    def versions(self, page_id: str, needed: set[int]) -> list[Any] | None:
        """The page's versions (newest first) until every ``needed`` number was seen;
        None when the page is gone (404) since it was listed."""
        found: list[Any] = []
        seen: set[int] = set()
        params = {"start": 0, "limit": self.page_size, "expand": VERSION_EXPAND}
        try:
            for answer in self.paged(f"rest/api/content/{quote(page_id, safe='')}/version", params):
                for version in answer.get("results") or []:
                    found.append(version)
                    number = version.get("number") if isinstance(version, dict) else None
                    if isinstance(number, int):
                        seen.add(number)
                if needed <= seen:
                    break
        except SourceError as exc:
            if exc.__cause__ is not None and status_of(exc.__cause__) == 404:
                return None
            raise
        return found


# -- one run -----------------------------------------------------------------------------
def ingest_confluence(
    source: ConfluenceSource, store: RawStore, *, now: datetime
) -> ConfluenceFetchResult:
    """Fetch what changed since the watermark (everything on the first run) into raw."""
    result = ConfluenceFetchResult()
    _ingest_spaces(source, store, result)

    mark = store.watermark("page")
    full = result.full = mark is None
    cql = source.page_cql(mark)
    result.time_zone = None if full else source.user_time_zone()
    stored = _StoredPages(store)
    listed = 0
    for results, total in read_ahead(source.search(cql)):
        result.search_pages += 1
        if result.reported_total is None:
            result.reported_total = total
        listed += len(results)
        if results:
            store.commit(_page_batch(source, results, stored, result))
    result.pages_listed = listed
    store.record_listing("page", listed=listed, reported=result.reported_total, full=full)

    if _reconcile_due(store, source.policy, now, full):
        _reconcile(source, store, now, stored, result)
        result.reconciled = True
    _record_version_listing(store)
    return result


class _StoredPages:
    """What is stored of the pages a listing holds: each one's version number and the
    numbers of its stored versions. Read from the committed store for each listing
    page's pages, the versions only of stored pages whose number moved, and kept up to
    date with what the run hands over (which the committed store may not show yet).
    Reading every stored page and version instead took 0.6 s a night at 100,000 issues,
    when the overlap window re-lists a few unchanged pages.

    A page's versions are stored in the transaction that stores the page and tombstoned
    before it is, so a page with no current row has no stored version to read."""

    def __init__(self, store: RawStore):
        self._store = store
        self.known: dict[str, int] = {}  # page id -> its stored version number
        self.versions: dict[str, set[int]] = {}  # page id -> numbers of its stored versions
        self._numbers_read: set[str] = set()
        self._versions_read: set[str] = set()

    def look_up(self, pages: list[PagePayload]) -> None:
        """Read what this run has not read yet of the listed pages."""
        unread = list(dict.fromkeys(p.id for p in pages if p.id not in self._numbers_read))
        if unread:
            self._numbers_read.update(unread)
            numbers = self._store.committed().kept_or_stored_parts(
                "page", unread, VERSION, "$.version.number"
            )
            for page_id, number in numbers.items():
                if isinstance(number, int | str) and str(number).isdigit():
                    self.known[page_id] = int(number)
        moved = list(
            dict.fromkeys(
                p.id
                for p in pages
                if p.id in self.known
                and p.id not in self._versions_read
                and self.known[p.id] != p.version.number
            )
        )
        if moved:
            self._versions_read.update(moved)
            children = self._store.committed().stored_children("page_version", moved)
            for page_id, keys in children.items():
                have = self.versions.setdefault(page_id, set())
                for key in keys:
                    number = key.rpartition(":")[2]
                    if number.isdigit():
                        have.add(int(number))


def _ingest_spaces(
    source: ConfluenceSource, store: RawStore, result: ConfluenceFetchResult
) -> None:
    """The whole (scoped) space listing; /space reports no total, only each page's size."""
    batch = Batch()
    present: set[str] = set()
    reported = listed = 0
    for answer in source.spaces():
        results = answer.get("results") or []
        size = answer.get("size")
        reported += size if isinstance(size, int) else len(results)
        listed += len(results)
        for raw in results:
            key = raw.get("key") if isinstance(raw, dict) else None
            if not isinstance(key, str) or not key:
                batch.quarantined.append(Quarantined("space", None, "key: missing", raw))
                continue
            present.add(key)
            batch.objects.append(RawObject("space", key, raw))
    store.commit(batch)
    store.record_listing("space", listed=listed, reported=reported, full=True)
    store.tombstone_missing("space", present)
    result.spaces = len(present)


def _page_batch(
    source: ConfluenceSource,
    results: Iterable[Any],
    stored: _StoredPages,
    result: ConfluenceFetchResult,
) -> Batch:
    """One listing page as a batch: pages, their new versions, quarantined records and
    the watermark (the latest ``version.when`` among the pages it stores)."""
    batch = Batch()
    newest: datetime | None = None
    checked = [(raw, *check_page(raw)) for raw in results]
    stored.look_up([page for _, page, _ in checked if page is not None])
    known, stored_versions = stored.known, stored.versions
    histories = _histories(source, [page for _, page, _ in checked], known, stored_versions)
    for raw, page, reason in checked:
        if page is None:
            key = raw.get("id") if isinstance(raw, dict) else None
            batch.quarantined.append(Quarantined("page", _text_or_none(key), reason or "", raw))
            continue
        if known.get(page.id) != page.version.number:
            if not _add_versions(source, page, stored_versions, batch, result, histories):
                result.vanished += 1
                continue
            _add_current_version(raw, page, stored_versions, batch)
        batch.objects.append(RawObject("page", page.id, raw, parts={VERSION: page.version.number}))
        known[page.id] = page.version.number
        when = parse_ts(page.version.when)
        newest = when if newest is None else max(newest, when)
    if newest is not None:
        batch.watermarks[("page", "*")] = newest
    return batch


def _needed_versions(page: PagePayload, stored_versions: dict[str, set[int]]) -> set[int]:
    """The numbers below the page's current version not stored yet."""
    return set(range(1, page.version.number)) - stored_versions.get(page.id, set())


def _histories(
    source: ConfluenceSource,
    pages: list[PagePayload | None],
    known: dict[str, int],
    stored_versions: dict[str, set[int]],
) -> dict[tuple[str, int], list[Any] | None]:
    """The version histories the valid pages of a listing page need, fetched up to
    ``source.in_flight`` at once, by (page id, current version number)."""
    wanted: dict[tuple[str, int], set[int]] = {}
    for page in pages:
        if page is None or known.get(page.id) == page.version.number:
            continue
        needed = _needed_versions(page, stored_versions)
        if needed:
            wanted.setdefault((page.id, page.version.number), needed)
    fetched = in_order(
        lambda item: source.versions(item[0][0], item[1]), list(wanted.items()), source.in_flight
    )
    return dict(zip(wanted, fetched, strict=True))


def _add_versions(
    source: ConfluenceSource,
    page: PagePayload,
    stored_versions: dict[str, set[int]],
    batch: Batch,
    result: ConfluenceFetchResult,
    histories: dict[tuple[str, int], list[Any] | None],
) -> bool:
    """Queue the versions of ``page`` below its current one not stored yet (the current
    one comes with the listing); False when the page vanished. ``histories``: those
    fetched for the listing page; any other is fetched here."""
    needed = _needed_versions(page, stored_versions)
    have = stored_versions.setdefault(page.id, set())
    if not needed:
        return True
    at = (page.id, page.version.number)
    fetched = histories.pop(at) if at in histories else source.versions(page.id, needed)
    result.histories_fetched += 1
    if fetched is None:
        return False
    for raw in fetched:
        version, reason = check_version(raw)
        if version is None:
            number = raw.get("number") if isinstance(raw, dict) else None
            key = f"{page.id}:{number}" if number is not None else None
            batch.quarantined.append(Quarantined("page_version", key, reason or "", raw))
            continue
        if version.number in have or version.number == page.version.number:
            continue
        payload = raw if "page_id" in raw else {**raw, "page_id": page.id}
        batch.objects.append(
            RawObject("page_version", f"{page.id}:{version.number}", payload, parent_key=page.id)
        )
        have.add(version.number)
    return True


def _add_current_version(
    raw: dict[str, Any], page: PagePayload, stored_versions: dict[str, set[int]], batch: Batch
) -> None:
    """Queue the page's current version, as the history would give it, from the listing
    (version fields, title, body): one request less per changed page."""
    have = stored_versions.setdefault(page.id, set())
    if page.version.number in have:
        return
    batch.objects.append(
        RawObject(
            "page_version",
            f"{page.id}:{page.version.number}",
            current_version(raw),
            parent_key=page.id,
        )
    )
    have.add(page.version.number)


def current_version(page: dict[str, Any]) -> dict[str, Any]:
    """A listed page's version in the shape of ``/content/{id}/version`` with
    ``expand=content.body.storage``: the version object with its content inside."""
    version = {k: v for k, v in page["version"].items() if k not in ("_links", "_expandable")}
    content = {k: page[k] for k in ("id", "type", "status", "title") if k in page}
    body = page.get("body")
    if isinstance(body, dict) and "storage" in body:
        content["body"] = {"storage": body["storage"]}
    return {**version, "content": content, "page_id": str(page["id"])}


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _record_version_listing(store: RawStore) -> None:
    """Versions current pages say they have (``version.number``) against those listed:
    stored, or quarantined with a reason. A page's number is read from the part kept
    beside it (added first to pages stored without it by an earlier version; every page
    stored since carries it), not from its payload: reading every page's payload
    each night took 1.7 s at 100,000 issues."""
    store.keep_missing_part("page", VERSION, "$.version.number")
    reported, listed = store.con.execute(
        """
        WITH pages AS (
            SELECT c.object_key, TRY_CAST(json_extract_string(p.parts, $2) AS BIGINT) AS n
            FROM raw.current c LEFT JOIN raw.parts p ON p.raw_id = c.raw_id
            WHERE c.source = $1 AND c.object_type = 'page' AND NOT c.deleted
        ),
        stored AS (
            SELECT object_key, parent_key AS page_id FROM raw.latest
            WHERE source = $1 AND object_type = 'page_version' AND NOT deleted
        ),
        quarantined AS (
            SELECT DISTINCT object_key, regexp_extract(object_key, '^(.*):[0-9]+$', 1) AS page_id
            FROM raw.quarantine
            WHERE source = $1 AND object_type = 'page_version' AND object_key IS NOT NULL
              AND object_key NOT IN (SELECT object_key FROM stored)
        )
        SELECT
            (SELECT coalesce(sum(n), 0) FROM pages),
            (SELECT count(*) FROM (SELECT page_id FROM stored UNION ALL
                                   SELECT page_id FROM quarantined)
             WHERE page_id IN (SELECT object_key FROM pages))
        """,
        [store.source, f'$."{VERSION}"'],
    ).fetchone()
    store.record_listing("page_version", listed=int(listed), reported=int(reported), full=True)


def _reconcile_due(store: RawStore, policy: Policy, now: datetime, full: bool) -> bool:
    if full:  # a full listing is itself a reconciliation
        store.commit(Batch(watermarks={(RECONCILE, "*"): now}))
        return False
    every = policy.ingest.reconcile_every_days
    if every <= 0:
        return False
    last = store.watermark(RECONCILE)
    return last is None or now - last >= timedelta(days=every)


def _reconcile(
    source: ConfluenceSource,
    store: RawStore,
    now: datetime,
    stored: _StoredPages,
    result: ConfluenceFetchResult,
) -> None:
    """Keys-only listing (ordered by creation, which edits do not shift): pages it no
    longer lists become tombstones with their versions; pages it lists that were
    never stored are fetched now."""
    present: set[str] = set()
    reported: int | None = None
    for results, total in source.search(
        f"{source.scope_cql()} ORDER BY created ASC", expand=None, limit=KEYS_LIMIT
    ):
        reported = total if reported is None else reported
        present.update(str(r["id"]) for r in results if isinstance(r, dict) and r.get("id"))
    store.record_listing("page", listed=len(present), reported=reported, full=True)

    missing = sorted(present - store.stored_keys("page"))
    for start in range(0, len(missing), source.page_size):
        chunk = missing[start : start + source.page_size]
        cql = f"id in ({', '.join(cql_string(i) for i in chunk)}) ORDER BY lastmodified ASC"
        for results, _total in source.search(cql):
            store.commit(_page_batch(source, results, stored, result))
            result.recovered += len(results)

    if reported is not None and len(present) < reported:
        # A listing that came back short must not delete what it failed to list.
        return
    for page_id in sorted(store.stored_keys("page") - present):
        store.tombstone_missing("page_version", set(), parent_key=page_id)
    store.tombstone_missing("page", present, watermark=(RECONCILE, "*", now))
