"""Raw layer, GitLab: projects, merge requests with changes, notes and approvals, commits,
deployments and the repository files the policy names (specs, contract tests,
observability)."""

from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.defs.raw import RAW_RETRY_POLICY, skipped_result, source_connection
from dagster_project.defs.resources import GitlabResource
from dagster_project.lib.policy import load_policy
from dagster_project.lib.rawstore import RawStore
from dagster_project.lib.sources.gitlab_source import GitlabSource, ingest_gitlab
from dagster_project.metadata import raw_result


@dg.asset(
    key=["raw", "gitlab"],
    group_name="raw",
    kinds={"gitlab", "duckdb"},
    owners=["team:driftgate"],
    pool="duckdb",
    retry_policy=RAW_RETRY_POLICY,
)
def raw_gitlab(
    context: dg.AssetExecutionContext, gitlab: GitlabResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Every GitLab object as received, append-only: a changed MR adds a row.

    Merge requests are incremental on `updated_at` with an overlap window; commits and
    files are read only for projects whose `last_activity_at` moved, and a file's
    content only when its blob id changed; a periodic keys-only listing turns deleted
    MRs into tombstones.
    """
    policy = load_policy()
    conn = source_connection(context, "gitlab", gitlab, duckdb, policy)
    if conn is None:
        return skipped_result("gitlab", gitlab)
    source = GitlabSource(conn, policy)
    with duckdb.get_connection() as con:
        store = RawStore(con, "gitlab", context.run.run_id)
        fetched = ingest_gitlab(source, store, now=datetime.now(UTC))
        return raw_result(
            con,
            store,
            {
                "projects": fetched.projects,
                "mr_list_pages": fetched.mr_pages,
                "mrs_listed": fetched.mrs_listed,
                "mrs_fetched": fetched.mrs_fetched,
                "mr_listings_repeated": fetched.relisted,
                "projects_synced": fetched.projects_synced,
                "projects_unchanged": fetched.projects_skipped,
                "commits_listed": fetched.commits_listed,
                "deployments_listed": fetched.deployments_listed,
                "files_fetched": fetched.files_fetched,
                "requests": source.requests,
                "reconciled": fetched.reconciled,
                "recovered_by_reconciliation": fetched.recovered,
            },
            log=context.log,
        )
