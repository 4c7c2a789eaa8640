"""Raw layer, Confluence: spaces, pages (current version) and every page version."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.defs.raw import RAW_RETRY_POLICY
from dagster_project.defs.resources import ConfluenceResource
from dagster_project.lib.policy import Policy
from dagster_project.lib.sources.confluence_source import ConfluenceSource, ingest_confluence
from dagster_project.raw_assets import UnitFetch, fetched, load_op, staging_store, units_op


def connect_confluence(confluence: ConfluenceResource, policy: Policy) -> ConfluenceSource:
    """The one place a Confluence connection is opened."""
    return ConfluenceSource(confluence.connection(policy), policy)


@dg.op(pool="confluence", retry_policy=RAW_RETRY_POLICY)
def fetch_confluence_unit(
    context: dg.OpExecutionContext,
    task: UnitFetch,
    confluence: ConfluenceResource,
    duckdb: DuckDBResource,
) -> dict:
    """One unit of the Confluence scope (a space, or all of them) into its staging store."""
    source = connect_confluence(confluence, task.unit.policy)
    with staging_store(context, task, duckdb) as store:
        result = ingest_confluence(source, store, now=task.fetched_at)
    return fetched(
        task,
        store,
        {
            "spaces": result.spaces,
            "search_pages": result.search_pages,
            "pages_listed": result.pages_listed,
            "histories_fetched": result.histories_fetched,
            "requests": source.requests,
            "full_listing": result.full,
            "cql_time_zone": "n/a"
            if result.full
            else result.time_zone or "unknown: window widened by 12 h",
            "reconciled": result.reconciled,
            "recovered_by_reconciliation": result.recovered,
            "vanished_during_run": result.vanished,
        },
    )


confluence_units = units_op("confluence")
load_confluence = load_op("confluence")


@dg.graph_asset(
    key=["raw", "confluence"],
    group_name="raw",
    kinds={"confluence", "duckdb"},
    owners=["team:driftgate"],
)
def raw_confluence():
    """Every Confluence space, page and page version as received, append-only.

    Incremental on `lastmodified` with an overlap window; a page's history is read only
    when its version number moved; a periodic keys-only listing tombstones deleted pages.
    Each space of the policy's scope (or all of them) is fetched by its own step into
    its staging store; one step loads them into the database.
    """
    return load_confluence(confluence_units().map(fetch_confluence_unit).collect())
