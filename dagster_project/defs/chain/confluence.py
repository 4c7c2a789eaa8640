"""Chain layer, Confluence: pages, their versions, labels and the issues they mention."""

from dagster_project.sql_assets import sql_table_asset

RAW_CONFLUENCE = ["raw", "confluence"]

chain_page_versions = sql_table_asset(
    "chain",
    "page_versions",
    deps=[RAW_CONFLUENCE],
    description="Every version of every page: when, who, the body as text, and whether it "
    "carries the policy's approval marker.",
)
chain_page_fields = sql_table_asset(
    "chain",
    "page_fields",
    deps=[RAW_CONFLUENCE],
    description="What each current page's own payload gives (space, title, labels, version, "
    "dates, authors, ancestors, links), typed once: built page by page.",
)
chain_pages = sql_table_asset(
    "chain",
    "pages",
    deps=[RAW_CONFLUENCE, ["chain", "page_fields"], ["chain", "page_versions"]],
    description="One row per current Confluence page: space, title, labels, version, "
    "author, ancestors, body as text, approval now and since which version.",
)
chain_page_labels = sql_table_asset(
    "chain",
    "page_labels",
    deps=[RAW_CONFLUENCE],
    description="One row per label of a page: how the policy recognises PRDs, test plans, "
    "runbooks and auth models.",
)
chain_page_mentions = sql_table_asset(
    "chain",
    "page_mentions",
    deps=[RAW_CONFLUENCE, ["chain", "page_fields"], ["chain", "page_versions"]],
    description="Jira issue keys a page mentions (Jira macro, link or whole-word text) and "
    "the first version that mentioned them.",
)
