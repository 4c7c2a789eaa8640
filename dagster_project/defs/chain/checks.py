"""Chain-layer checks that stop the run where a broken build would make every analysis
and the report lie."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.metadata import markdown_table

# (chain table, its key column, raw source, raw object type, what a row is)
TYPED = (
    ("work_items", "issue_key", "jira", "issue", "Jira issue"),
    ("merge_requests", "object_key", "gitlab", "merge_request", "merge request"),
    ("pages", "page_id", "confluence", "page", "Confluence page"),
)


def _typed_check(table: str, key: str, source: str, object_type: str, noun: str):
    @dg.asset_check(
        asset=["chain", table],
        name="every_raw_object_typed",
        blocking=True,
        pool="duckdb",
        description=f"Every stored {noun} has its row in chain.{table}: an empty or short "
        "typed table after a non-empty ingest stops the run before the analysis reads it.",
    )
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as con:
            lost = con.execute(
                f"SELECT object_key FROM raw.latest WHERE source = ? AND object_type = ? "  # noqa: S608
                f"AND NOT deleted AND object_key NOT IN (SELECT {key} FROM chain.{table}) "
                "ORDER BY object_key",
                [source, object_type],
            ).fetchall()
            stored = con.execute(
                "SELECT count(*) FROM raw.latest WHERE source = ? AND object_type = ? "
                "AND NOT deleted",
                [source, object_type],
            ).fetchone()[0]
        return dg.AssetCheckResult(
            passed=not lost,
            metadata={
                "stored": stored,
                "untyped": len(lost),
                "first_untyped": dg.MetadataValue.md(
                    markdown_table([object_type], lost[:20], empty="none")
                ),
            },
        )

    return _check


typed_checks = [_typed_check(*spec) for spec in TYPED]
