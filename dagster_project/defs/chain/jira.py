"""Chain layer, Jira: typed work items and their history."""

from dagster_project.sql_assets import sql_table_asset

RAW_JIRA = ["raw", "jira"]

chain_work_items = sql_table_asset(
    "chain",
    "work_items",
    deps=[RAW_JIRA],
    description="One row per current Jira issue: type, status and its category, labels, "
    "components, epic, story points, acceptance criteria and description as text.",
)
chain_status_transitions = sql_table_asset(
    "chain",
    "status_transitions",
    deps=[RAW_JIRA],
    description="Every status change of every issue, with the category of both ends.",
)
chain_field_changes = sql_table_asset(
    "chain",
    "field_changes",
    deps=[RAW_JIRA],
    description="Every non-status changelog item: the evidence of scope changes and late gates.",
)
chain_issue_links = sql_table_asset(
    "chain",
    "issue_links",
    deps=[RAW_JIRA],
    description="Issue links read as sentences: A <phrase> B (e.g. 'is caused by').",
)
chain_remote_links = sql_table_asset(
    "chain",
    "remote_links",
    deps=[RAW_JIRA],
    description="Remote links from issues, with the Confluence page id when they point at one.",
)
