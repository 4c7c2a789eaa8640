"""Raw layer, GitLab: projects, merge requests with changes, notes and approvals, commits,
deployments and the repository files the policy names (specs, contract tests,
observability)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.defs.raw import RAW_RETRY_POLICY
from dagster_project.defs.resources import GitlabResource
from dagster_project.lib.policy import Policy
from dagster_project.lib.sources.gitlab_source import GitlabSource, ingest_gitlab
from dagster_project.raw_assets import UnitFetch, fetched, load_op, staging_store, units_op


def connect_gitlab(gitlab: GitlabResource, policy: Policy) -> GitlabSource:
    """The one place a GitLab connection is opened."""
    return GitlabSource(gitlab.connection(policy), policy)


@dg.op(pool="gitlab", retry_policy=RAW_RETRY_POLICY)
def fetch_gitlab_unit(
    context: dg.OpExecutionContext,
    task: UnitFetch,
    gitlab: GitlabResource,
    duckdb: DuckDBResource,
) -> dict:
    """One unit of the GitLab scope (a project, a group, or all member projects) into its
    staging store."""
    source = connect_gitlab(gitlab, task.unit.policy)
    with staging_store(context, task, duckdb) as store:
        result = ingest_gitlab(source, store, now=task.fetched_at)
    return fetched(
        task,
        store,
        {
            "projects": result.projects,
            "mr_list_pages": result.mr_pages,
            "mrs_listed": result.mrs_listed,
            "mrs_fetched": result.mrs_fetched,
            "mr_changes_kept": result.changes_kept,  # diff refs unchanged: not asked again
            "mr_listings_repeated": result.relisted,
            "projects_synced": result.projects_synced,
            "projects_unchanged": result.projects_skipped,
            "commits_listed": result.commits_listed,
            "deployments_listed": result.deployments_listed,
            "files_fetched": result.files_fetched,
            "files_reused": result.files_reused,
            "requests": source.requests,
            "mr_notes_via": source.notes_via,  # graphql, or rest and why
            "reconciled": result.reconciled,
            "recovered_by_reconciliation": result.recovered,
        },
    )


gitlab_units = units_op("gitlab")
load_gitlab = load_op("gitlab")


@dg.graph_asset(
    key=["raw", "gitlab"],
    group_name="raw",
    kinds={"gitlab", "duckdb"},
    owners=["team:driftgate"],
)
def raw_gitlab():
    """Every GitLab object as received, append-only: a changed MR adds a row.

    Merge requests are incremental on `updated_at` with an overlap window, their notes
    and approvers read in bulk through GraphQL (REST per MR where it is off); commits and
    files are read only for projects whose `last_activity_at` moved, and a file's
    content only when its blob id changed; a periodic keys-only listing turns deleted
    MRs into tombstones. Each project and group of the policy's scope (or all member
    projects) is fetched by its own step into its staging store; one step loads them
    into the database.
    """
    return load_gitlab(gitlab_units().map(fetch_gitlab_unit).collect())
