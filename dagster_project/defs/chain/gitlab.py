"""Chain layer, GitLab: merge requests and what they change, say and name; commits,
repository files and deployments."""

from dagster_project.sql_assets import sql_table_asset

RAW_GITLAB = ["raw", "gitlab"]
MERGE_REQUESTS = ["chain", "merge_requests"]
MR_NOTES = ["chain", "mr_notes"]

chain_merge_requests = sql_table_asset(
    "chain",
    "merge_requests",
    deps=[RAW_GITLAB],
    description="One row per current merge request, keyed <project_path>!<iid>: branches, "
    "state, labels, author and the created/merged/closed moments.",
)
chain_mr_change_files = sql_table_asset(
    "chain",
    "mr_change_files",
    deps=[RAW_GITLAB],
    description="The files of each stored /changes answer, with lines added and removed: "
    "each diff counted once, built answer by answer.",
)
chain_mr_changes = sql_table_asset(
    "chain",
    "mr_changes",
    deps=[["chain", "mr_change_files"], MERGE_REQUESTS],
    description="The files each merge request changes, with lines added and removed.",
)
chain_mr_note_kinds = sql_table_asset(
    "chain",
    "mr_note_kinds",
    deps=[RAW_GITLAB],
    description="Every stored merge-request note, typed and classified once: built note by note.",
)
chain_mr_notes = sql_table_asset(
    "chain",
    "mr_notes",
    deps=[["chain", "mr_note_kinds"], MERGE_REQUESTS],
    description="Every note of every merge request, classified: pushes (added commits), "
    "approvals, unapprovals, comments, other system notes.",
)
chain_mr_approvals = sql_table_asset(
    "chain",
    "mr_approvals",
    deps=[RAW_GITLAB],
    description="When each merge request was first approved, from its approvals answer: "
    "built answer by answer.",
)
chain_mr_review_rounds = sql_table_asset(
    "chain",
    "mr_review_rounds",
    deps=[["chain", "mr_approvals"], MERGE_REQUESTS, MR_NOTES],
    description="Per merge request, the pushes that followed its first review comment or "
    "approval: the revision rounds behind the rework report.",
)
chain_mr_mentions = sql_table_asset(
    "chain",
    "mr_mentions",
    deps=[MERGE_REQUESTS],
    description="Jira issue keys named as whole words in an MR's title, source branch or "
    "description: the default issue <-> merge request link.",
)
chain_commits = sql_table_asset(
    "chain",
    "commits",
    deps=[RAW_GITLAB],
    description="Every commit of every project (all refs), with additions and deletions.",
)
chain_repository_files = sql_table_asset(
    "chain",
    "repository_files",
    deps=[RAW_GITLAB],
    description="Specs, contract tests and observability files at each default branch, "
    "by the policy's globs.",
)
chain_deployments = sql_table_asset(
    "chain",
    "deployments",
    deps=[RAW_GITLAB],
    description="Every deployment: environment, ref, sha, status and when it finished.",
)
