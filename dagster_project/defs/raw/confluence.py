"""Raw layer, Confluence: spaces, pages (current version) and every page version."""

from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.defs.raw import RAW_RETRY_POLICY, skipped_result, source_connection
from dagster_project.defs.resources import ConfluenceResource
from dagster_project.lib.policy import load_policy
from dagster_project.lib.rawstore import RawStore
from dagster_project.lib.sources.confluence_source import ConfluenceSource, ingest_confluence
from dagster_project.metadata import raw_result


@dg.asset(
    key=["raw", "confluence"],
    group_name="raw",
    kinds={"confluence", "duckdb"},
    owners=["team:driftgate"],
    pool="duckdb",
    retry_policy=RAW_RETRY_POLICY,
)
def raw_confluence(
    context: dg.AssetExecutionContext, confluence: ConfluenceResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Every Confluence space, page and page version as received, append-only.

    Incremental on `lastmodified` with an overlap window; a page's history is read only
    when its version number moved; a periodic keys-only listing tombstones deleted pages.
    """
    policy = load_policy()
    conn = source_connection(context, "confluence", confluence, duckdb, policy)
    if conn is None:
        return skipped_result("confluence", confluence)
    source = ConfluenceSource(conn, policy)
    with duckdb.get_connection() as con:
        store = RawStore(con, "confluence", context.run.run_id)
        fetched = ingest_confluence(source, store, now=datetime.now(UTC))
        return raw_result(
            con,
            store,
            {
                "spaces": fetched.spaces,
                "search_pages": fetched.search_pages,
                "pages_listed": fetched.pages_listed,
                "histories_fetched": fetched.histories_fetched,
                "requests": source.requests,
                "full_listing": fetched.full,
                "cql_time_zone": "n/a"
                if fetched.full
                else fetched.time_zone or "unknown: window widened by 12 h",
                "reconciled": fetched.reconciled,
                "recovered_by_reconciliation": fetched.recovered,
                "vanished_during_run": fetched.vanished,
            },
            log=context.log,
        )
