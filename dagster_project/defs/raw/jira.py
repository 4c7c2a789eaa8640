"""Raw layer, Jira: issues (with complete changelogs), remote links, fields, statuses."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.defs.raw import RAW_RETRY_POLICY
from dagster_project.defs.resources import JiraResource
from dagster_project.lib.policy import Policy
from dagster_project.lib.sources.jira_source import JiraSource, ingest_jira
from dagster_project.raw_assets import UnitFetch, fetched, load_op, staging_store, units_op


def connect_jira(jira: JiraResource, policy: Policy) -> JiraSource:
    """The one place a Jira connection is opened."""
    return JiraSource(jira.connection(policy), policy)


@dg.op(pool="jira", retry_policy=RAW_RETRY_POLICY)
def fetch_jira_unit(
    context: dg.OpExecutionContext, task: UnitFetch, jira: JiraResource, duckdb: DuckDBResource
) -> dict:
    """One unit of the Jira scope (a project, or all of it) into its staging store."""
    source = connect_jira(jira, task.unit.policy)
    with staging_store(context, task, duckdb) as store:
        result = ingest_jira(source, store, now=task.fetched_at)
    return fetched(
        task,
        store,
        {
            "flavor": result.flavor,
            "search_pages": result.pages,
            "issues_listed": result.issues_seen,
            "changelog_requests": result.changelog_requests,
            "remotelink_requests": result.remotelink_requests,
            "reconciled": result.reconciled,
        },
    )


jira_units = units_op("jira")
load_jira = load_op("jira")


@dg.graph_asset(
    key=["raw", "jira"],
    group_name="raw",
    kinds={"jira", "duckdb"},
    owners=["team:driftgate"],
)
def raw_jira():
    """Every Jira object as received, append-only: a changed issue adds a row.

    Incremental on `updated` with an overlap window; a periodic keys-only listing
    turns deleted issues into tombstones. Each project of the policy's scope (or all of
    them, or the JQL's issues) is fetched by its own step into its staging store; one
    step loads them into the database.
    """
    return load_jira(jira_units().map(fetch_jira_unit).collect())
