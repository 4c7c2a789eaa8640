"""Benchmark: dlt's ``rest_api`` source against Driftgate's raw layer, same organisation,
same emulator, same run.

    uv run --group bench python benchmarks/dlt_baseline.py --dataset DIR --latency-ms 20

DIR is a generated organisation (``driftgate sandbox generate --out DIR --scale
medium``). One ``driftgate sandbox serve --dataset DIR --latency-ms L`` process serves it;
each tool then runs in a subprocess of its own, into a fresh folder, with the emulator's
request counters reset before it: wall time, requests per API (``/_sandbox/stats``),
memory, rows landed and the size of the DuckDB file are printed side by side.

What each side does (the scope differs; the numbers are not like for like):

* dlt (the ``bench`` dependency group) reads the endpoints Driftgate's sources read
  (``MIRRORED`` below) through ``rest_api`` resources and child resources, with the
  APIs' own paginators, and lands every row as received, as a full refresh
  (``write_disposition="replace"``, no incremental cursors) normalised into dlt's
  nested tables. It validates nothing, keeps no history, watermarks or tombstones.
* Driftgate materialises the raw layer only (``raw/jira``, ``raw/gitlab``,
  ``raw/confluence`` and their checks) of the nightly job: it validates every payload
  (quarantining what fails), writes append-only history with content hashes, records
  watermarks and listing completeness, and sends a few bookkeeping requests
  (``DRIFTGATE_ONLY``). Chain, analysis and reports are not run.

Concurrency: two requests at once per API on both sides (the policy's
``operations.parallel_requests`` default; ``--workers`` changes both). Driftgate: the
policy scope lists every project, group and space of DIR (one fetch step each), pools
``jira``/``gitlab``/``confluence`` are limited to 2 and ``duckdb`` to 1, and the job runs
with ``dagster_project/run_config/nightly_multiprocess.yaml``, as
``benchmarks/fanout_nightly.py`` does. dlt: one pipeline per API, the three running at
once in threads (as dlt supports); each source is ``parallelized=True`` (its listings
page in the extract thread pool) and so is each child resource (its per-parent requests
go to the pool), and each pipeline's pool has ``EXTRACT__WORKERS=2`` threads (dlt's
``[extract] workers``): at most two requests per API in flight (counted and printed, as
``requests in flight at most``). The three loads into the one DuckDB file take turns,
as Driftgate's load steps do in pool ``duckdb``.

Memory and CPU: the peak of the tool's process tree (PSS summed over its processes) and
the CPU time of its processes, both sampled every 0.5 s with psutil, and the largest
single process (``ru_maxrss`` from ``wait4``). On a machine shared with other work the
CPU time says more than the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from dagster_project.sandbox.dataset import scope_of
from dagster_project.sandbox.runtime import emulator_env

REPO = Path(__file__).resolve().parents[1]
DEFAULT_POLICY = REPO / "dagster_project" / "policy" / "default.yaml"
SOURCES = ("jira", "gitlab", "confluence")
PAGE = 100  # the policy's ingest.page_size
# Nested lists become child tables down to this depth (issue -> changelog histories ->
# their items); deeper structures, such as Jira's rich-text documents, stay JSON columns.
NESTING = 2
PAGE_EXPAND = "body.storage,version,metadata.labels,ancestors,space,history"

# Data endpoints (as the emulator counts them) read by both tools; ``{v}`` is the Jira
# REST version (3 on Cloud, 2 on Server/DC).
MIRRORED = {
    "jira": {
        "GET /rest/api/{v}/field",
        "GET /rest/api/{v}/status",
        "GET /rest/api/{v}/search/jql",  # Cloud; Server/DC: /search
        "GET /rest/api/{v}/issue/{key}/remotelink",
        "GET /rest/api/{v}/issue/{key}/changelog",  # Cloud, only for truncated changelogs
    },
    "gitlab": {
        "GET /api/v4/groups/{id}/projects",
        "GET /api/v4/groups/{id}/merge_requests",
        "GET /api/v4/projects/{id}/merge_requests/{iid}/changes",
        # Driftgate reads MR notes and approvers in bulk through GraphQL; dlt's rest_api
        # reads them per merge request (see DLT_INSTEAD).
        "POST /api/graphql",
        "GET /api/v4/projects/{id}/deployments",
        "GET /api/v4/projects/{id}/repository/commits",
        "GET /api/v4/projects/{id}/repository/tree",
        "GET /api/v4/projects/{id}/repository/tags",
        # Driftgate reads /raw (bytes); rest_api needs JSON, so dlt reads the same file
        # base64-encoded from the JSON endpoint.
        "GET /api/v4/projects/{id}/repository/files/{file_path}/raw",
    },
    "confluence": {
        "GET /wiki/rest/api/space",
        "GET /wiki/rest/api/content/search",
        "GET /wiki/rest/api/content/{id}/version",
    },
}
# dlt's request where it differs from Driftgate's for the same data.
DLT_INSTEAD = {
    "POST /api/graphql": (
        "GET /api/v4/projects/{id}/merge_requests/{iid}/notes"
        " + GET /api/v4/projects/{id}/merge_requests/{iid}/approvals"
    ),
    "GET /api/v4/projects/{id}/repository/files/{file_path}/raw": (
        "GET /api/v4/projects/{id}/repository/files/{file_path}"
    ),
}
# Driftgate's bookkeeping, not data: flavour and reachability probes, the user's time zone
# for JQL dates, the match count a Cloud listing is checked against.
DRIFTGATE_ONLY = {
    "GET /rest/api/2/serverInfo",
    "GET /rest/api/3/serverInfo",
    "GET /rest/api/2/myself",
    "GET /rest/api/3/myself",
    "POST /rest/api/3/search/approximate-count",
    "GET /api/v4/user",
    "GET /wiki/rest/api/user/current",
}


def endpoints(templates: set[str], flavor: str) -> set[str]:
    """Templates with the Jira REST version (and search path) of ``flavor``."""
    version = "3" if flavor == "cloud" else "2"
    out = {t.replace("{v}", version) for t in templates}
    if flavor != "cloud":
        out = {t.replace("/search/jql", "/search") for t in out}
    return out


def write_policy(path: Path, scope: dict[str, list[str]], workers: int) -> dict[str, Any]:
    """The default policy with ``scope`` and ``workers`` parallel requests per source."""
    import yaml

    policy = yaml.safe_load(DEFAULT_POLICY.read_text())
    policy["scope"] = {**policy["scope"], **scope}
    policy["operations"]["parallel_requests"] = dict.fromkeys(SOURCES, workers)
    path.write_text(yaml.safe_dump(policy))
    return policy


# -- dlt ---------------------------------------------------------------------------------
def api_of(url: str) -> str:
    path = urlsplit(url).path
    if path.startswith("/wiki/"):
        return "confluence"
    return "gitlab" if path.startswith("/api/v4/") else "jira"


class InFlight:
    """Requests under way per API, and the most seen at once (counted at the adapter)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    def install(self) -> None:
        from requests.adapters import HTTPAdapter

        send = HTTPAdapter.send

        def counted(adapter: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            api = api_of(request.url)
            with self.lock:
                self.now[api] += 1
                self.peak[api] = max(self.peak[api], self.now[api])
            try:
                return send(adapter, request, *args, **kwargs)
            finally:
                with self.lock:
                    self.now[api] -= 1

        HTTPAdapter.send = counted  # type: ignore[method-assign]


def dlt_sources(
    url: str, flavor: str, scope: dict[str, list[str]], globs: dict[str, list[str]]
) -> dict:
    """One ``rest_api`` source per API, configured for the endpoints in ``MIRRORED``."""
    import dlt
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.auth import HttpBasicAuth
    from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator, OffsetPaginator
    from dlt.sources.rest_api import rest_api_resources

    from dagster_project.lib.gitlab_text import matches_any

    cloud = flavor == "cloud"
    auth = {"type": "http_basic", "username": "bench", "password": "bench"}
    defaults = {"write_disposition": "replace", "parallelized": True}
    single = {"paginator": "single_page", "data_selector": "$"}
    missing_ok = [
        {"status_code": 404, "action": "ignore"},
        {"status_code": 403, "action": "ignore"},
    ]

    # -- Jira: the search with changelogs, remote links per issue ---------------------
    jira_base = f"{url}/rest/api/{'3' if cloud else '2'}"
    projects = ", ".join(f'"{p}"' for p in scope["jira_projects"])
    search_params = {
        "jql": f"project in ({projects}) ORDER BY updated ASC, key ASC",
        "fields": "*all",
        "expand": "changelog",
        "maxResults": PAGE,
    }
    if cloud:
        search = {
            "path": "search/jql",
            "params": search_params,
            "data_selector": "issues",
            "paginator": {
                "type": "cursor",
                "cursor_path": "nextPageToken",
                "cursor_param": "nextPageToken",
            },
        }
    else:
        search = {
            "path": "search",
            "params": {k: v for k, v in search_params.items() if k != "maxResults"},
            "data_selector": "issues",
            "paginator": {
                "type": "offset",
                "limit": PAGE,
                "offset_param": "startAt",
                "limit_param": "maxResults",
                "total_path": "total",
            },
        }
    jira_config = {
        "client": {"base_url": jira_base, "auth": auth, "paginator": "single_page"},
        "resource_defaults": defaults,
        "resources": [
            {"name": "fields", "endpoint": {"path": "field", **single}},
            {"name": "statuses", "endpoint": {"path": "status", **single}},
            {"name": "issues", "endpoint": search},
            {
                "name": "remote_links",
                "endpoint": {"path": "issue/{resources.issues.key}/remotelink", **single},
                "include_from_parent": ["key"],
            },
        ],
    }
    changelog_client = RESTClient(base_url=jira_base, auth=HttpBasicAuth("bench", "bench"))

    def truncated_changelogs(issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The whole history of an issue whose embedded changelog was cut (Cloud keeps
        100); rest_api has no conditional child, so this one is a plain transformer."""
        out: list[dict[str, Any]] = []
        for issue in issues if isinstance(issues, list) else [issues]:
            changelog = issue.get("changelog") or {}
            if (changelog.get("total") or 0) <= len(changelog.get("histories") or []):
                continue
            pages = changelog_client.paginate(
                f"issue/{issue['key']}/changelog",
                params={"maxResults": PAGE},
                paginator=OffsetPaginator(
                    limit=PAGE, offset_param="startAt", limit_param="maxResults", total_path="total"
                ),
                data_selector="values",
            )
            out.extend({**h, "_issues_key": issue["key"]} for page in pages for h in page)
        return out

    @dlt.source(name="jira", max_table_nesting=NESTING, parallelized=True)
    def jira() -> list[Any]:
        resources = rest_api_resources(jira_config)
        issues = next(r for r in resources if r.name == "issues")
        changelogs = dlt.transformer(
            truncated_changelogs,
            data_from=issues,
            name="issue_changelogs",
            write_disposition="replace",
            parallelized=True,
        )
        return [*resources, changelogs]

    # -- GitLab: group listings, per-MR children, per-project repository reads --------
    def spec_blobs(entry: dict[str, Any]) -> bool:
        return entry.get("type") == "blob" and matches_any(entry.get("path"), globs["all"])

    def tag_specs(entry: dict[str, Any]) -> bool:
        return entry.get("type") == "blob" and matches_any(entry.get("path"), globs["spec"])

    def encoded(entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, "path_encoded": quote(entry["path"], safe="")}

    def groups() -> Iterator[list[dict[str, Any]]]:
        yield [{"path_encoded": quote(g, safe="")} for g in scope["gitlab_groups"]]

    listed = {"per_page": PAGE}
    mr = "projects/{resources.merge_requests.project_id}/merge_requests/{resources.merge_requests.iid}"
    project = "projects/{resources.projects.id}"
    gitlab_config = {
        "client": {
            "base_url": f"{url}/api/v4",
            "headers": {"PRIVATE-TOKEN": "bench"},
            "paginator": "header_link",
        },
        "resource_defaults": defaults,
        "resources": [
            dlt.resource(groups, name="groups", selected=False),
            {
                "name": "projects",
                "endpoint": {
                    "path": "groups/{resources.groups.path_encoded}/projects",
                    "params": {
                        **listed,
                        "include_subgroups": True,
                        "order_by": "id",
                        "sort": "asc",
                    },
                },
            },
            {
                "name": "merge_requests",
                "endpoint": {
                    "path": "groups/{resources.groups.path_encoded}/merge_requests",
                    "params": {**listed, "state": "all", "order_by": "updated_at", "sort": "asc"},
                },
            },
            {"name": "mr_changes", "endpoint": {"path": mr + "/changes", **single}},
            {
                "name": "mr_notes",
                "endpoint": {
                    "path": mr + "/notes",
                    "params": {**listed, "sort": "asc", "order_by": "created_at"},
                },
                "include_from_parent": ["project_id", "iid"],
            },
            {
                "name": "mr_approvals",
                "endpoint": {"path": mr + "/approvals", **single, "response_actions": missing_ok},
            },
            {
                "name": "deployments",
                "endpoint": {
                    "path": project + "/deployments",
                    "params": {**listed, "order_by": "updated_at", "sort": "asc"},
                    "response_actions": missing_ok,
                },
                "include_from_parent": ["id"],
            },
            {
                "name": "commits",
                "endpoint": {
                    "path": project + "/repository/commits",
                    "params": {**listed, "all": True, "with_stats": True},
                    "response_actions": missing_ok,
                },
                "include_from_parent": ["id"],
            },
            {
                "name": "tree",
                "endpoint": {
                    "path": project + "/repository/tree",
                    "params": {
                        **listed,
                        "recursive": True,
                        "ref": "{resources.projects.default_branch}",
                    },
                    "response_actions": missing_ok,
                },
                "include_from_parent": ["id", "default_branch"],
                "processing_steps": [{"filter": spec_blobs}, {"map": encoded}],
            },
            {
                "name": "files",
                "endpoint": {
                    "path": "projects/{resources.tree._projects_id}/repository/files/"
                    "{resources.tree.path_encoded}",
                    "params": {"ref": "{resources.tree._projects_default_branch}"},
                    **single,
                },
            },
            {
                "name": "tags",
                "endpoint": {
                    "path": project + "/repository/tags",
                    "params": listed,
                    "response_actions": missing_ok,
                },
                "include_from_parent": ["id"],
            },
            {
                "name": "tag_tree",
                "endpoint": {
                    "path": "projects/{resources.tags._projects_id}/repository/tree",
                    "params": {**listed, "recursive": True, "ref": "{resources.tags.name}"},
                    "response_actions": missing_ok,
                },
                "include_from_parent": ["_projects_id", "name"],
                "processing_steps": [{"filter": tag_specs}, {"map": encoded}],
            },
            {
                "name": "tag_files",
                "endpoint": {
                    "path": "projects/{resources.tag_tree._tags__projects_id}/repository/files/"
                    "{resources.tag_tree.path_encoded}",
                    "params": {"ref": "{resources.tag_tree._tags_name}"},
                    **single,
                },
            },
        ],
    }

    # -- Confluence: spaces, the page search with bodies, versions per page -----------
    class NextLink(JSONLinkPaginator):
        """``_links.next`` is relative to ``_links.base`` (``…/wiki``): joined to the
        request URL, as the stock paginator does, it would lose the context path."""

        def __init__(self) -> None:
            super().__init__(next_url_path="_links.next")

        def update_state(self, response: Any, data: list[Any] | None = None) -> None:
            body = response.json()
            links = body.get("_links") or {}
            following = links.get("next") if body.get("results") else None
            self._next_reference = links.get("base", "") + following if following else None

    spaces = ", ".join(f'"{s}"' for s in scope["confluence_spaces"])
    confluence_config = {
        "client": {"base_url": f"{url}/wiki/rest/api", "auth": auth, "paginator": NextLink()},
        "resource_defaults": {**defaults, "endpoint": {"data_selector": "results"}},
        "resources": [
            {
                "name": "spaces",
                "endpoint": {
                    "path": "space",
                    "params": {"spaceKey": scope["confluence_spaces"], "limit": PAGE},
                },
            },
            {
                "name": "pages",
                "endpoint": {
                    "path": "content/search",
                    "params": {
                        "cql": f"type = page AND space in ({spaces}) ORDER BY lastmodified ASC",
                        "expand": PAGE_EXPAND,
                        "limit": PAGE,
                    },
                },
            },
            {
                "name": "page_versions",
                "endpoint": {
                    "path": "content/{resources.pages.id}/version",
                    "params": {"expand": "content.body.storage", "limit": PAGE},
                },
                "include_from_parent": ["id"],
            },
        ],
    }
    return {
        "jira": jira(),
        "gitlab": dlt.source(name="gitlab", max_table_nesting=NESTING, parallelized=True)(
            lambda: rest_api_resources(gitlab_config)
        )(),
        "confluence": dlt.source(name="confluence", max_table_nesting=NESTING, parallelized=True)(
            lambda: rest_api_resources(confluence_config)
        )(),
    }


def run_dlt(args: argparse.Namespace) -> None:
    """The dlt side, in its own process: three pipelines at once, loads one at a time."""
    work = Path(args.work)
    os.environ["EXTRACT__WORKERS"] = str(args.workers)
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    import dlt
    import yaml

    ingest = yaml.safe_load(DEFAULT_POLICY.read_text())["ingest"]
    globs = {
        "spec": ingest["spec_globs"],
        "all": ingest["spec_globs"] + ingest["contract_test_globs"] + ingest["observability_globs"],
    }
    inflight = InFlight()
    inflight.install()
    sources = dlt_sources(args.url, args.flavor, json.loads(args.scope), globs)
    load_turn = threading.Lock()
    timings: dict[str, dict[str, float]] = {}
    errors: list[str] = []

    def run(name: str) -> None:
        try:
            pipeline = dlt.pipeline(
                pipeline_name=f"baseline_{name}",
                pipelines_dir=str(work / "dlt_pipelines"),
                destination=dlt.destinations.duckdb(str(work / "dlt.duckdb")),
                dataset_name=name,
            )
            started = time.monotonic()
            pipeline.extract(sources[name])
            extracted = time.monotonic()
            pipeline.normalize()
            normalized = time.monotonic()
            with load_turn:
                waited = time.monotonic()
                pipeline.load()
            done = time.monotonic()
            timings[name] = {
                "extract_s": round(extracted - started, 1),
                "normalize_s": round(normalized - extracted, 1),
                "load_s": round(done - waited, 1),
                "total_s": round(done - started, 1),
            }
        except Exception as exc:  # reported by the parent
            errors.append(f"{name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(name,)) for name in SOURCES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    Path(args.out).write_text(
        json.dumps({"timings": timings, "in_flight_peak": dict(inflight.peak), "errors": errors})
    )
    if errors:
        raise SystemExit("\n".join(errors))


# -- Driftgate -----------------------------------------------------------------------------
def nightly_job() -> Any:
    """The product's nightly job, for Dagster to rebuild in each step process."""
    from dagster_project.definitions import defs

    return defs.load_fn().resolve_job_def("nightly")


def run_driftgate(args: argparse.Namespace) -> None:
    """Driftgate's raw layer, in its own process, through the multiprocess executor."""
    import dagster as dg
    import yaml

    from dagster_project.defs.automation import MULTIPROCESS_RUN_CONFIG, apply_pool_limits
    from dagster_project.lib.policy import load_policy

    with dg.DagsterInstance.get() as instance:
        limits = apply_pool_limits(instance, load_policy())
        result = dg.execute_job(
            dg.reconstructable(nightly_job),
            instance=instance,
            run_config=yaml.safe_load(MULTIPROCESS_RUN_CONFIG.read_text()),
            asset_selection=[dg.AssetKey(["raw", s]) for s in SOURCES],
            raise_on_error=False,
        )
        spans: dict[str, list[float]] = {}
        for record in instance.all_logs(result.run_id):
            event = record.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type_value in ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE"):
                spans.setdefault(event.step_key, []).append(record.timestamp)
    at_once = {
        source: most_at_once(
            # (start, end) of each fetch step that ran once
            [s for k, s in spans.items() if f"fetch_{source}_unit[" in k and len(s) == 2]
        )
        for source in SOURCES
    }
    Path(args.out).write_text(
        json.dumps(
            {
                "success": result.success,
                "pools": limits,
                "fetch_steps_at_once": at_once,
                "steps": len(spans),
            }
        )
    )
    if not result.success:
        raise SystemExit("the raw layer failed; see the Dagster instance's logs")


def most_at_once(spans: list[list[float]]) -> int:
    """The most intervals (start, end) open at one moment."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


# -- measuring a tool in its own process -------------------------------------------------
class TreeSampler(threading.Thread):
    """Peak of a process tree's memory (PSS summed over its processes) and the CPU time
    of each of its processes, sampled (a process living less than a sample is missed)."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.peak_mb = 0.0
        self.peak_at = 0.0  # seconds after the start
        self.cpu_s: dict[int, float] = {}  # user + system seconds, by pid
        self.done = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        started = time.monotonic()
        while not self.done.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            for proc in procs:
                try:
                    total += proc.memory_full_info().pss
                    times = proc.cpu_times()
                    self.cpu_s[proc.pid] = times.user + times.system
                except psutil.Error:
                    continue
            if total / 2**20 > self.peak_mb:
                self.peak_mb, self.peak_at = total / 2**20, time.monotonic() - started
            self.done.wait(self.every_s)


def measured(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run ``cmd``: its wall time, exit code, peak tree PSS, CPU time and largest process
    RSS."""
    with log.open("w") as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.done.set()
        sampler.join()
    return {
        "wall_s": round(elapsed, 1),
        "exit": proc.returncode,
        "peak_pss_mb": round(sampler.peak_mb),
        "peak_at_s": round(sampler.peak_at),
        "cpu_s": round(sum(sampler.cpu_s.values()), 1),
        "largest_rss_mb": round(usage.ru_maxrss / 1024),
    }


def size_mb(path: Path) -> float:
    if not path.exists():
        return 0.0
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def dlt_rows(db: Path) -> dict[str, int]:
    """Rows of every data table (dlt's own ``_dlt_*`` tables left out): all of them, and
    those of the root tables (one per object received)."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute(
            "SELECT schema_name, table_name, estimated_size FROM duckdb_tables() "
            "WHERE schema_name IN ('jira', 'gitlab', 'confluence') AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\'"
        ).fetchall()
        counts = {
            f"{s}.{t}": con.execute(f'SELECT count(*) FROM "{s}"."{t}"').fetchone()[0]  # noqa: S608
            for s, t, _ in tables
        }
    roots = {name: n for name, n in sorted(counts.items()) if "__" not in name.split(".")[1]}
    return {
        "all_tables": sum(counts.values()),
        "root_tables": sum(roots.values()),
        "tables": len(counts),
        "by_root_table": roots,
    }


def driftgate_rows(db: Path) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        by_type = con.execute(
            "SELECT source || '.' || object_type, count(*) FROM raw.objects GROUP BY 1 ORDER BY 1"
        ).fetchall()
        quarantined = con.execute("SELECT count(*) FROM raw.quarantine").fetchone()[0]
    return {
        "objects": sum(n for _, n in by_type),
        "quarantined": quarantined,
        "by_type": dict(by_type),
    }


# -- the comparison ----------------------------------------------------------------------
def start_emulator(dataset: Path, latency_ms: int) -> tuple[subprocess.Popen, str]:
    driftgate = str(Path(sys.executable).with_name("driftgate"))
    serve = subprocess.Popen(
        [driftgate, "sandbox", "serve", "--dataset", str(dataset), "--port", "0",
         "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = (serve.stdout.readline() if serve.stdout else "").strip()
    if not url.startswith("http"):
        serve.terminate()
        raise SystemExit(f"the emulator did not start: {url!r}")
    return serve, url


def stats(url: str, *, reset: bool = False) -> dict[str, Any]:
    import requests

    if reset:
        requests.delete(f"{url}/_sandbox/stats", timeout=10).raise_for_status()
        return {}
    return requests.get(f"{url}/_sandbox/stats", timeout=10).json()


def warm_up(url: str, flavor: str, scope: dict[str, list[str]]) -> None:
    """One small request to each of the emulator's lazily built indexes, so that neither
    tool pays for building them."""
    import requests

    def get(path: str, **params: Any) -> Any:
        response = requests.get(f"{url}{path}", params=params, timeout=600)
        response.raise_for_status()
        return response.json()

    jira = "/rest/api/3" if flavor == "cloud" else "/rest/api/2"
    jql = f'project = "{scope["jira_projects"][0]}" ORDER BY key ASC'
    search = "/search/jql" if flavor == "cloud" else "/search"
    key = get(jira + search, jql=jql, maxResults=1, fields="key")["issues"][0]["key"]
    get(f"{jira}/issue/{key}/remotelink")
    if flavor == "cloud":
        get(f"{jira}/issue/{key}/changelog", maxResults=1)
    group = quote(scope["gitlab_groups"][0], safe="")
    project = get(f"/api/v4/groups/{group}/projects", per_page=1)[0]["id"]
    mr = get(f"/api/v4/groups/{group}/merge_requests", per_page=1, state="all")[0]
    for path in ("changes", "notes", "approvals"):
        get(f"/api/v4/projects/{mr['project_id']}/merge_requests/{mr['iid']}/{path}")
    for path in ("repository/commits", "deployments", "repository/tree", "repository/tags"):
        get(f"/api/v4/projects/{project}/{path}", per_page=1)
    page = get("/wiki/rest/api/content/search", cql="type = page", limit=1)["results"][0]
    get(f"/wiki/rest/api/content/{page['id']}/version", limit=1)
    get("/wiki/rest/api/space", limit=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="a generated organisation")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="parallel requests per API")
    parser.add_argument("--work", help="folder for the databases and logs (default: temp)")
    parser.add_argument("--only", choices=("dlt", "driftgate"), help="run one tool only")
    args = parser.parse_args()
    dataset = Path(args.dataset).resolve()
    work = Path(args.work or tempfile.mkdtemp(prefix="driftgate-dlt-")).resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    manifest = json.loads((dataset / "manifest.json").read_text())
    flavor = manifest.get("jira_flavor", "cloud")
    scope = scope_of(dataset)
    write_policy(work / "policy.yaml", scope, args.workers)

    serve, url = start_emulator(dataset, args.latency_ms)
    results: dict[str, dict[str, Any]] = {}
    try:
        started = time.monotonic()
        warm_up(url, flavor, scope)
        print(f"emulator {url}: warmed up in {time.monotonic() - started:.1f} s", flush=True)
        for tool in ("dlt", "driftgate"):
            if args.only and tool != args.only:
                continue
            results[tool] = run_tool(tool, work, url, flavor, scope, args)
            print(f"{tool}: {results[tool]['wall_s']} s", flush=True)
    finally:
        serve.terminate()
        serve.wait(timeout=30)

    report = {
        "dataset": str(dataset),
        "flavor": flavor,
        "latency_ms": args.latency_ms,
        "workers": args.workers,
        "scope_units": {k: len(v) for k, v in scope.items()},
        "results": results,
    }
    (work / "results.json").write_text(json.dumps(report, indent=1))
    print(table(report))
    print(f"\nlogs, databases and results.json in {work}")


def run_tool(
    tool: str,
    work: Path,
    url: str,
    flavor: str,
    scope: dict[str, list[str]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    folder = work / tool
    folder.mkdir()
    out = folder / "result.json"
    env = {**os.environ}
    cmd = [sys.executable, str(Path(__file__).resolve()), f"_{tool}", "--out", str(out)]
    if tool == "dlt":
        cmd += ["--url", url, "--flavor", flavor, "--scope", json.dumps(scope), "--work",
                str(folder), "--workers", str(args.workers)]  # fmt: skip
        db = folder / "dlt.duckdb"
    else:
        # imported here: the dlt side's process must not load Dagster
        from dagster_project.defs.automation import pooled_home

        home = pooled_home(folder / "dagster_home")
        db = folder / "driftgate.duckdb"
        manifest = json.loads((Path(args.dataset) / "manifest.json").read_text())
        env.update(
            {
                "DAGSTER_HOME": str(home),
                **emulator_env(url, user="bench", token="bench"),
                "DRIFTGATE_POLICY": str(work / "policy.yaml"),
                "DRIFTGATE_AS_OF": manifest["as_of"],
                "DRIFTGATE_DB": str(db),
                "DRIFTGATE_REPORTS": str(folder / "reports"),
            }
        )  # fmt: skip
    stats(url, reset=True)
    run = measured(cmd, env, folder / "run.log")
    counted = stats(url)
    if run["exit"] != 0:
        raise SystemExit(f"{tool} failed; see {folder / 'run.log'}")
    run.update(json.loads(out.read_text()))
    run["requests"] = {**counted["requests"], "total": sum(counted["requests"].values())}
    run["by_endpoint"] = counted["by_endpoint"]
    run["db_mb"] = round(size_mb(db) + size_mb(db.with_name(db.name + ".wal")), 1)
    if tool == "dlt":
        run["rows"] = dlt_rows(db)
        run["other_files_mb"] = round(size_mb(folder / "dlt_pipelines"), 1)
    else:
        from dagster_project.lib.staging import staging_dir

        run["rows"] = driftgate_rows(db)
        run["other_files_mb"] = round(size_mb(staging_dir(db)), 1)
    return run


def table(report: dict[str, Any]) -> str:
    """The side-by-side table, the endpoint counts, and what each side did."""
    results = report["results"]
    if set(results) != {"dlt", "driftgate"}:
        return json.dumps(results, indent=1)
    d, g = results["dlt"], results["driftgate"]

    def ratio(a: float, b: float) -> str:
        return f"{b / a:.2f}" if a else "-"

    rows = [
        ("wall time (s)", d["wall_s"], g["wall_s"]),
        ("CPU time, user + system (s)", d["cpu_s"], g["cpu_s"]),
        *[(f"requests: {s}", d["requests"][s], g["requests"][s]) for s in SOURCES],
        ("requests: total", d["requests"]["total"], g["requests"]["total"]),
        ("peak memory, process tree PSS (MB)", d["peak_pss_mb"], g["peak_pss_mb"]),
        ("largest process RSS (MB)", d["largest_rss_mb"], g["largest_rss_mb"]),
        ("rows landed: root tables / raw.objects", d["rows"]["root_tables"], g["rows"]["objects"]),
        ("rows landed: all tables", d["rows"]["all_tables"], g["rows"]["objects"]),
        ("DuckDB file (MB)", d["db_mb"], g["db_mb"]),
        ("other files kept (MB)", d["other_files_mb"], g["other_files_mb"]),
    ]
    lines = [
        f"dataset {report['dataset']} ({report['flavor']}), latency {report['latency_ms']} ms, "
        f"{report['workers']} requests at once per API",
        "",
        "| measure | dlt rest_api | Driftgate raw layer | Driftgate / dlt |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {a:,} | {b:,} | {ratio(a, b)} |" for name, a, b in rows]
    lines += [
        "",
        f"dlt: {d['rows']['tables']} tables; per API (extract, normalize, load s): "
        + "; ".join(
            f"{s} {t['extract_s']}/{t['normalize_s']}/{t['load_s']}"
            for s, t in d["timings"].items()
        )
        + f"; requests in flight at most: {d['in_flight_peak']}; memory peak at "
        f"{d['peak_at_s']} s",
        f"Driftgate: fetch steps at once at most: {g['fetch_steps_at_once']} "
        f"(pools {g['pools']}); {g['rows']['quarantined']} quarantined; memory peak at "
        f"{g['peak_at_s']} s; other files = the staging stores",
        "dlt root tables: "
        + ", ".join(f"{k} {v:,}" for k, v in d["rows"]["by_root_table"].items()),
        "Driftgate raw.objects: "
        + ", ".join(f"{k} {v:,}" for k, v in g["rows"]["by_type"].items()),
        "",
        "| endpoint | dlt | Driftgate |",
        "|---|---:|---:|",
    ]
    names = sorted(set(d["by_endpoint"]) | set(g["by_endpoint"]))
    lines += [
        f"| {n} | {d['by_endpoint'].get(n, 0):,} | {g['by_endpoint'].get(n, 0):,} |" for n in names
    ]
    lines += [
        "",
        "Scope: dlt lands raw rows only (full refresh, nested tables, no validation). "
        "Driftgate also validates and quarantines, keeps append-only history with content "
        "hashes, watermarks and listing completeness; chain, analysis and reports not run.",
    ]
    return "\n".join(lines)


def child_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--url")
    parser.add_argument("--flavor")
    parser.add_argument("--scope")
    parser.add_argument("--work")
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args(argv)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_dlt":
        run_dlt(child_args(sys.argv[2:]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_driftgate":
        run_driftgate(child_args(sys.argv[2:]))
    else:
        main()
