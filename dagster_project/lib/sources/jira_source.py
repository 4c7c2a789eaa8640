"""Jira ingestion through the ``jira`` client: Cloud and Server/DC, incremental, lossless.

Cloud pages ``/rest/api/3/search/jql`` with ``nextPageToken`` (no totals; counts come
from ``approximate-count``) and completes truncated changelogs from
``/issue/{key}/changelog``; Server/DC pages ``/rest/api/2/search`` with ``startAt`` and
embeds changelogs whole. Rich text is read from ``issue.raw`` (ADF on v3, wiki on v2).
Each page commits with the watermark it covers; see ``lib/rawstore.py``.

Remote links are read from ``/issue/{key}/remotelink`` only for an issue whose complete
changelog holds ``RemoteIssueLink`` items (Jira records adding, changing and removing a
remote link there) that differ from those of its stored version: a call per changed
issue was most of a nightly's requests. An issue whose changelog never shows one is
stored with no remote links without asking. Blind spot: a link written by an app that
records no changelog entry is not seen until a recorded remote-link change of the same
issue makes it fetch.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jira import JIRA
from pydantic import ValidationError, field_validator

from dagster_project.lib.connections import Connection
from dagster_project.lib.inflight import in_order, offset_pages, read_ahead
from dagster_project.lib.policy import Policy
from dagster_project.lib.rawstore import Batch, Quarantined, RawObject, RawStore
from dagster_project.lib.retry import SourceError, with_retries
from dagster_project.lib.sources.payloads import Lenient, Timestamp, validation_reason
from dagster_project.lib.sources.timeparse import parse_ts, query_time

ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]*-\d+$")
JQL_TIME = "%Y/%m/%d %H:%M"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RECONCILE = "reconcile"
CHANGELOG_PAGE = 100  # the server cap; independent of the search page size


# -- what the product reads of an issue, validated before it is stored --------------------
class _History(Lenient):
    created: Timestamp
    items: list[dict[str, Any]]


class _Changelog(Lenient):
    total: int | None = None
    histories: list[_History] = []


class _Named(Lenient):
    name: str | None = None
    key: str | None = None
    id: str | None = None


class _Fields(Lenient):
    updated: Timestamp
    created: Timestamp
    project: _Named
    issuetype: _Named
    status: _Named
    summary: str | None = None


class IssuePayload(Lenient):
    id: str
    key: str
    fields: _Fields
    changelog: _Changelog | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not ISSUE_KEY.match(v):
            raise ValueError(f"not an issue key: {v!r}")
        return v


# -- the client --------------------------------------------------------------------------
@dataclass
class JiraFetchResult:
    flavor: str
    pages: int = 0
    issues_seen: int = 0
    changelog_requests: int = 0
    remotelink_requests: int = 0
    reconciled: bool = False
    reported_total: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


class JiraSource:
    """One run's view of a Jira instance."""

    def __init__(self, conn: Connection, policy: Policy):
        self.conn = conn
        self.policy = policy
        self.page_size = policy.ingest.page_size
        # Remote-link calls of one search page sent at once (lib/inflight.py); every
        # request of the step, whichever thread sends it, takes one of as many slots.
        self.in_flight = policy.operations.step_requests("jira")
        self.slots = threading.BoundedSemaphore(self.in_flight)
        self._secrets = (conn.token,)
        self.client, self.flavor = self._connect()
        self._tz: str | None = None

    def _call(self, what: str, fn: Any) -> Any:
        def in_slot() -> Any:
            with self.slots:
                return fn()

        return with_retries(
            in_slot, what=f"jira {what}", policy=self.conn.retry_policy, secrets=self._secrets
        )

    def _connect(self) -> tuple[JIRA, str]:
        def make(version: str) -> JIRA:
            return JIRA(
                server=self.conn.url,
                basic_auth=(self.conn.user, self.conn.token),
                options={"rest_api_version": version},
                max_retries=0,
                timeout=self.conn.timeout_s,
                logging=False,
            )

        client = self._call("GET /serverInfo", lambda: make("2"))
        if client._is_cloud:
            # Cloud: v3 for ADF bodies and /search/jql; construction asks /serverInfo again.
            return self._call("GET /rest/api/3/serverInfo", lambda: make("3")), "cloud"
        return client, "server"

    @property
    def api_base(self) -> str:
        return f"{self.conn.url}/rest/api/{'3' if self.flavor == 'cloud' else '2'}"

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET through the client's own session (auth, headers), with bounded retries."""

        def call() -> Any:
            response = self.client._session.get(f"{self.api_base}/{path}", params=params)
            return response.json()

        return self._call(f"GET {path}", call)

    def user_time_zone(self) -> str | None:
        if self._tz is None:
            self._tz = (self.get_json("myself") or {}).get("timeZone") or "UTC"
        return self._tz

    # -- listings ---------------------------------------------------------------------
    def scope_jql(self) -> str:
        scope = self.policy.scope
        clauses = []
        if scope.jira_projects:
            quoted = ", ".join(f'"{p}"' for p in scope.jira_projects)
            clauses.append(f"project in ({quoted})")
        if scope.jira_jql:
            clauses.append(f"({scope.jira_jql})")
        return " AND ".join(clauses)

    def _jql(self, since: datetime) -> str:
        when = query_time(
            since,
            overlap_minutes=self.policy.ingest.overlap_minutes if since > EPOCH else 0,
            tz=self.user_time_zone(),
            fmt=JQL_TIME,
        )
        scope = self.scope_jql()
        restriction = f'updated >= "{when}"'
        where = f"{scope} AND {restriction}" if scope else restriction
        return f"{where} ORDER BY updated ASC, key ASC"

    def search_pages(self, jql: str, fields: str = "*all", expand: str | None = "changelog"):
        """Yield (issues, reported_total) page by page; total is None on Cloud."""
        if self.flavor == "cloud":
            token: str | None = None
            while True:
                page = self._call(
                    "GET search/jql",
                    lambda t=token: self.client.enhanced_search_issues(
                        jql,
                        nextPageToken=t,
                        maxResults=self.page_size,
                        fields=fields,
                        expand=expand,
                        json_result=True,
                    ),
                )
                yield page.get("issues", []), None
                token = page.get("nextPageToken")
                if not token or page.get("isLast"):
                    return
        else:
            # Server pages by offset: the pages after the first are asked for as many at
            # once as the step's slots allow (lib/inflight.offset_pages).
            def page_at(start: int) -> tuple[list[dict[str, Any]], int | None]:
                page = self._call(
                    "GET search",
                    lambda: self.client.search_issues(
                        jql,
                        startAt=start,
                        maxResults=self.page_size,
                        fields=fields,
                        expand=expand,
                        json_result=True,
                    ),
                )
                return page.get("issues", []), page.get("total")

            yield from offset_pages(page_at, self.in_flight)

    def count(self, jql: str) -> int | None:
        """What the source says matches ``jql`` (Server: total; Cloud: approximate count)."""
        if self.flavor == "cloud":

            def call() -> Any:
                response = self.client._session.post(
                    f"{self.api_base}/search/approximate-count", json={"jql": jql}
                )
                return response.json()

            return self._call("POST search/approximate-count", call).get("count")
        page = self._call(
            "GET search (count)",
            lambda: self.client.search_issues(
                jql, startAt=0, maxResults=0, fields="key", json_result=True
            ),
        )
        return page.get("total")

    def full_changelog(self, key: str) -> list[dict[str, Any]]:
        """Every history of ``key`` from /issue/{key}/changelog (Cloud only)."""
        histories: list[dict[str, Any]] = []
        start = 0
        while True:
            page = self.get_json(
                f"issue/{key}/changelog", {"startAt": start, "maxResults": CHANGELOG_PAGE}
            )
            values = page.get("values", [])
            histories.extend(values)
            start += len(values)
            total = page.get("total")
            if page.get("isLast") or not values or (total is not None and start >= total):
                return histories

    def remote_links(self, key: str) -> list[dict[str, Any]]:
        return self.get_json(f"issue/{key}/remotelink") or []


# -- one run -----------------------------------------------------------------------------
def ingest_jira(source: JiraSource, store: RawStore, *, now: datetime) -> JiraFetchResult:
    """Fetch what changed since the watermark (everything on the first run) into raw."""
    result = JiraFetchResult(flavor=source.flavor)

    # Reference data: small, fetched whole every run; unchanged rows are not stored again.
    fields = source.get_json("field")
    # The client looks fields up before every search unless its cache is primed; priming
    # it from this listing (its own rule: clauseNames -> id) saves a request per run.
    source.client._fields_cache_value = {
        name: f["id"] for f in fields for name in f.get("clauseNames") or () if "id" in f
    }
    statuses = source.get_json("status")
    meta = Batch(
        objects=[RawObject("field", str(f.get("id")), f) for f in fields]
        + [RawObject("status", str(s.get("id")), s) for s in statuses]
    )
    store.commit(meta)
    store.record_listing("field", listed=len(fields), reported=len(fields), full=True)
    store.record_listing("status", listed=len(statuses), reported=len(statuses), full=True)

    mark = store.watermark("issue")
    full = mark is None
    jql = source._jql(mark or EPOCH)
    known = _StoredIssues(store)
    listed = 0
    for issues, total in read_ahead(source.search_pages(jql)):
        result.pages += 1
        if total is not None:
            result.reported_total = total
        batch = Batch()
        newest: datetime | None = None
        changed: dict[str, dict[str, Any]] = {}
        known.look_up(raw.get("key") for raw in issues if isinstance(raw, dict))
        for raw in issues:
            listed += 1
            try:
                issue = IssuePayload.model_validate(raw)
            except ValidationError as exc:
                key = raw.get("key") if isinstance(raw, dict) else None
                batch.quarantined.append(Quarantined("issue", key, validation_reason(exc), raw))
                continue
            updated = parse_ts(issue.fields.updated)
            newest = max(newest, updated) if newest else updated
            if known.updated.get(issue.key) == issue.fields.updated:
                continue  # re-delivered by the overlap window, unchanged
            _complete_changelog(source, raw, result)
            changed[issue.key] = raw
        batch.objects.extend(_issue_objects(source, known, changed, result))
        if newest is not None:
            batch.watermarks[("issue", "*")] = newest
        store.commit(batch)
        result.issues_seen += len(issues)

    if full:
        reported = result.reported_total
        if source.flavor == "cloud":
            reported = source.count(jql.split(" ORDER BY")[0])
        store.record_listing("issue", listed=listed, reported=reported, full=True)
    else:
        store.record_listing("issue", listed=listed, reported=None, full=False)

    if _reconcile_due(store, source, now, full):
        _reconcile(source, store, now)
        result.reconciled = True
    return result


class _StoredIssues:
    """What the store holds of the issues a search page lists, read for that page's keys
    only: each one's ``updated`` (is it unchanged?) and remote-link history (may its
    links have changed?), as the store committed them, overlaid with what this run
    handed over since. A page need not wait for the previous page's commit
    (``PipelinedStore.committed``), and a night that lists a few issues reads a few."""

    def __init__(self, store: RawStore):
        self.store = store
        self.updated: dict[str, str] = {}
        self.history: dict[str, tuple[tuple[str, str, str], ...]] = {}
        self.linked: set[str] = set()  # issues whose remote links were handed over
        self._seen: set[str] = set()  # keys read or handed over

    def look_up(self, keys: Iterable[Any]) -> None:
        """Read what is committed of the keys not read or handed over yet: the parts kept
        with each stored issue in one query, the payload only of issues stored without
        them (by an earlier version)."""
        unseen = list(dict.fromkeys(k for k in keys if isinstance(k, str) and k not in self._seen))
        if not unseen:
            return
        self._seen.update(unseen)
        found = self.store.committed().kept_or_stored_part_sets(
            "issue",
            unseen,
            {
                UPDATED: ("$.fields.updated", lambda value: value),
                LINK_HISTORY: ("$.changelog.histories", remote_link_history),
            },
        )
        self.updated.update(found[UPDATED])
        self.history.update(
            (k, tuple(map(tuple, items))) for k, items in found[LINK_HISTORY].items()
        )

    def before(
        self, keys: Iterable[str]
    ) -> tuple[dict[str, tuple[tuple[str, str, str], ...]], set[str]]:
        """Each key's last link history (empty when none) and the keys with stored links."""
        keys = list(keys)
        self.look_up(keys)
        history = {key: self.history[key] for key in keys if key in self.history}
        linked = {key for key in keys if key in self.linked}
        linked |= self.store.committed().holds(
            "remotelink", [key for key in keys if key not in linked]
        )
        return history, linked

    def handed(self, objects: list[RawObject]) -> None:
        for o in objects:
            if o.object_type == "remotelink":
                self.linked.add(o.object_key)
            elif o.parts is not None:
                self._seen.add(o.object_key)
                if UPDATED in o.parts:
                    self.updated[o.object_key] = o.parts[UPDATED]
                if LINK_HISTORY in o.parts:
                    self.history[o.object_key] = tuple(map(tuple, o.parts[LINK_HISTORY]))


def _issue_objects(
    source: JiraSource,
    known: _StoredIssues,
    changed: dict[str, dict[str, Any]],
    result: JiraFetchResult,
) -> list[RawObject]:
    """The changed issues of one search page, each with its remote links where they are
    new or may have changed (see :func:`_links_may_have_changed`); those are fetched up
    to ``source.in_flight`` at once."""
    history = {
        key: remote_link_history((raw.get("changelog") or {}).get("histories"))
        for key, raw in changed.items()
    }
    before, stored_links = known.before(changed)
    to_fetch = [
        key
        for key in changed
        if _links_may_have_changed(history[key], before.get(key, ()), key in stored_links)
    ]
    result.remotelink_requests += len(to_fetch)
    fetched = dict(
        zip(to_fetch, in_order(source.remote_links, to_fetch, source.in_flight), strict=True)
    )
    objects: list[RawObject] = []
    for key, raw in changed.items():
        parts = {
            LINK_HISTORY: [list(item) for item in history[key]],
            UPDATED: raw["fields"]["updated"],
        }
        objects.append(RawObject("issue", key, raw, parts=parts))
        if key in fetched:
            links_now = fetched[key]
        elif key in stored_links:
            continue  # the stored links still hold
        else:
            links_now = []  # no remote link in the changelog: none, and no request
        payload = {"issue_key": key, "links": links_now}
        objects.append(RawObject("remotelink", key, payload, parent_key=key))
    known.handed(objects)
    return objects


# The remote-link items of an issue's changelog, kept beside the stored issue (raw.parts):
# a changed issue is compared with them without reading the stored issue's payload.
LINK_HISTORY = "remote_link_history"
UPDATED = "updated"  # kept too: the next fetch compares the listing with it


def remote_link_history(histories: Any) -> tuple[tuple[str, str, str], ...]:
    """The ``RemoteIssueLink`` items of a changelog as (history id, from, to), sorted:
    Jira records every remote link added, changed or removed there."""
    found = []
    for history in histories if isinstance(histories, list) else ():
        items = history.get("items") if isinstance(history, dict) else None
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and item.get("field") == "RemoteIssueLink":
                found.append((str(history.get("id")), str(item.get("from")), str(item.get("to"))))
    return tuple(sorted(found))


def _links_may_have_changed(
    history: tuple[tuple[str, str, str], ...],
    was: tuple[tuple[str, str, str], ...],
    stored: bool,
) -> bool:
    """Whether a changed issue's remote links must be asked for: the remote-link items of
    its changelog differ from the stored issue's (a link added, changed or removed since)
    or none were ever fetched for them. An issue whose changelog shows no remote link
    has none, and costs no request."""
    return history != was or (bool(history) and not stored)


def _complete_changelog(source: JiraSource, raw: dict[str, Any], result: JiraFetchResult) -> None:
    """Replace a truncated embedded changelog (Cloud keeps the last 100) by the whole one."""
    changelog = raw.get("changelog") or {}
    histories = changelog.get("histories") or []
    total = changelog.get("total")
    if total is None or total <= len(histories):
        return
    full = source.full_changelog(raw["key"])
    result.changelog_requests += 1
    raw["changelog"] = {
        "startAt": 0,
        "maxResults": len(full),
        "total": len(full),
        "histories": full,
    }


def _reconcile_due(store: RawStore, source: JiraSource, now: datetime, full: bool) -> bool:
    every = source.policy.ingest.reconcile_every_days
    if full or every <= 0:
        if full:  # a full listing is itself a reconciliation
            store.commit(Batch(watermarks={(RECONCILE, "*"): now}))
        return False
    last = store.watermark(RECONCILE)
    return last is None or now - last >= timedelta(days=every)


def _reconcile(source: JiraSource, store: RawStore, now: datetime) -> None:
    """Keys-only listing: stored issues the source no longer lists become tombstones.

    Nothing is tombstoned from a listing that looks incomplete (an issue without a key,
    fewer keys than the source reported): a short listing must not delete data.
    """
    jql = source.scope_jql() or 'created >= "1970/01/01 00:00"'
    present: set[str] = set()
    reported = None
    for issues, total in source.search_pages(f"{jql} ORDER BY key ASC", fields="key", expand=None):
        keys = [i.get("key") for i in issues if isinstance(i, dict)]
        if len(keys) != len(issues) or not all(keys):
            raise SourceError("jira reconciliation: the key listing returned issues without keys")
        present.update(keys)
        reported = total if total is not None else reported
    if source.flavor == "cloud":
        reported = source.count(jql)
    store.record_listing("issue", listed=len(present), reported=reported, full=True)
    if reported is not None and len(present) < reported:
        return  # the blocking listing check reports it; the next reconciliation retries
    store.tombstone_missing("remotelink", present)
    store.tombstone_missing("issue", present, watermark=(RECONCILE, "*", now))
