"""The units a source's ingestion fans out to: one per scope entry of the policy.

A Jira project, a GitLab project or group, a Confluence space is fetched by its own
Dagster step into its own staging store (``lib/staging.py``); a source whose scope
lists nothing (every project or space the token can see), or Jira restricted by JQL,
is one unit named ``all``. Each unit carries the policy with ``scope`` narrowed to it,
so the unchanged ``ingest_*`` functions fetch only that part: their listings, watermarks
and reconciliations are scoped queries compared with that unit's own store.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from dagster_project.lib.policy import Policy

SOURCES = ("jira", "gitlab", "confluence")
ALL = "all"
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class Unit:
    """One fan-out unit of a source.

    ``name`` is safe as a file name and as a Dagster mapping key; ``label`` is how the
    unit reads in listings and logs (``project:PAY``, ``group:payments``, ``*`` for all).
    """

    source: str
    name: str
    label: str
    policy: Policy


def safe_name(kind: str, ident: int | str) -> str:
    """``<kind>_<ident>`` with anything but letters, digits and ``_`` replaced; a name
    that had to be changed gets a short hash of the original, so two idents never meet."""
    text = str(ident)
    cleaned = _UNSAFE.sub("_", text)
    if cleaned != text:
        cleaned += "_" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
    return f"{kind}_{cleaned}"


def source_scopes(policy: Policy) -> dict[str, list[Unit]]:
    """Every source's units, in a stable order (by name)."""
    scope = policy.scope

    def unit(source: str, kind: str, ident: int | str, **narrowed: object) -> Unit:
        restricted = scope.model_copy(update=narrowed)
        return Unit(
            source,
            safe_name(kind, ident),
            f"{kind}:{ident}",
            policy.model_copy(update={"scope": restricted}),
        )

    def whole(source: str) -> list[Unit]:
        return [Unit(source, ALL, "*", policy)]

    jira = (
        whole("jira")
        if scope.jira_jql or not scope.jira_projects
        else [unit("jira", "project", p, jira_projects=[p]) for p in _distinct(scope.jira_projects)]
    )
    gitlab = (
        whole("gitlab")
        if not scope.gitlab_projects and not scope.gitlab_groups
        else [
            unit("gitlab", "project", p, gitlab_projects=[p], gitlab_groups=[])
            for p in _distinct(scope.gitlab_projects)
        ]
        + [
            unit("gitlab", "group", g, gitlab_projects=[], gitlab_groups=[g])
            for g in _distinct(scope.gitlab_groups)
        ]
    )
    confluence = (
        whole("confluence")
        if not scope.confluence_spaces
        else [
            unit("confluence", "space", s, confluence_spaces=[s])
            for s in _distinct(scope.confluence_spaces)
        ]
    )
    units = {"jira": jira, "gitlab": gitlab, "confluence": confluence}
    for listed in units.values():
        listed.sort(key=lambda u: u.name)
    return units


def _distinct(idents: list[int | str]) -> list[int | str]:
    """Each entry once: keys, paths and ids compare as text, case-insensitively (as the
    three servers compare them), so no two units differ only in letter case."""
    seen: set[str] = set()
    out: list[int | str] = []
    for ident in idents:
        key = str(ident).lower()
        if key not in seen:
            seen.add(key)
            out.append(ident)
    return out
