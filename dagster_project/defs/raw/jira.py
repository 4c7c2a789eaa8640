"""Raw layer, Jira: issues (with complete changelogs), remote links, fields, statuses."""

from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.defs.raw import RAW_RETRY_POLICY, skipped_result, source_connection
from dagster_project.defs.resources import JiraResource
from dagster_project.lib.policy import load_policy
from dagster_project.lib.rawstore import RawStore
from dagster_project.lib.sources.jira_source import JiraSource, ingest_jira
from dagster_project.metadata import raw_result


@dg.asset(
    key=["raw", "jira"],
    group_name="raw",
    kinds={"jira", "duckdb"},
    owners=["team:driftgate"],
    pool="duckdb",
    retry_policy=RAW_RETRY_POLICY,
)
def raw_jira(
    context: dg.AssetExecutionContext, jira: JiraResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Every Jira object as received, append-only: a changed issue adds a row.

    Incremental on `updated` with an overlap window; a periodic keys-only listing
    turns deleted issues into tombstones.
    """
    policy = load_policy()
    conn = source_connection(context, "jira", jira, duckdb, policy)
    if conn is None:
        return skipped_result("jira", jira)
    source = JiraSource(conn, policy)
    with duckdb.get_connection() as con:
        store = RawStore(con, "jira", context.run.run_id)
        fetched = ingest_jira(source, store, now=datetime.now(UTC))
        return raw_result(
            con,
            store,
            {
                "flavor": fetched.flavor,
                "search_pages": fetched.pages,
                "issues_listed": fetched.issues_seen,
                "changelog_requests": fetched.changelog_requests,
                "reconciled": fetched.reconciled,
            },
            log=context.log,
        )
