"""Chain layer: the links of the artifact chain across the three sources."""

from dagster_project.sql_assets import sql_table_asset

chain_links = sql_table_asset(
    "chain",
    "links",
    deps=[
        ["chain", "work_items"],
        ["chain", "remote_links"],
        ["chain", "mr_mentions"],
        ["chain", "merge_requests"],
        ["chain", "page_mentions"],
    ],
    description="Issue -> epic, issue -> merge request, issue -> page, epic -> repository, "
    "each with how it was found (epic link, key in title/branch/description, page mention, "
    "remote link, merge request of a story).",
)
