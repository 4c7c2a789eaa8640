"""Raw-layer checks: listings complete (blocking) and quarantine growth (warning)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.metadata import markdown_table

SOURCES = ("jira", "gitlab", "confluence")


def _listing_check(source: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=["raw", source],
        name="listed_what_source_reported",
        blocking=True,
        pool="duckdb",
        description=f"Each {source} listing fetched as many objects as the source reported "
        "(catches a client that silently stops paging).",
    )
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as con:
            short = con.execute(
                """
                SELECT object_type, scope, reported, listed FROM raw.live_listings
                WHERE source = ? AND full_listing AND reported IS NOT NULL
                  -- Version numbers count versions a retention policy may have purged:
                  -- not a listing total; analysis.ingest_completeness reports the gap.
                  AND object_type <> 'page_version'
                QUALIFY row_number() OVER (
                    PARTITION BY object_type, scope ORDER BY listed_at DESC) = 1
                    AND listed < reported
                ORDER BY object_type, scope
                """,
                [source],
            ).fetchall()
        return dg.AssetCheckResult(
            passed=not short,
            metadata={
                "short_listings": len(short),
                "detail": dg.MetadataValue.md(
                    markdown_table(
                        ["type", "scope", "reported", "listed"],
                        short[:20],
                        empty="every listing complete",
                    )
                ),
            },
        )

    return _check


def _quarantine_check(source: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=["raw", source],
        name="quarantine_not_growing",
        pool="duckdb",
        description=f"No {source} record was quarantined by the latest run.",
    )
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as con:
            rows = con.execute(
                """
                SELECT object_type, reason, count(*) FROM raw.quarantine
                WHERE source = ? AND run_id = (
                    SELECT run_id FROM raw.quarantine WHERE source = ?
                    ORDER BY fetched_at DESC LIMIT 1)
                  AND fetched_at >= (SELECT max(fetched_at) FROM raw.objects WHERE source = ?)
                GROUP BY ALL ORDER BY 3 DESC
                """,
                [source, source, source],
            ).fetchall()
        total = sum(n for _, _, n in rows)
        return dg.AssetCheckResult(
            passed=total == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "quarantined_latest_run": total,
                "reasons": dg.MetadataValue.md(
                    markdown_table(["type", "reason", "count"], rows[:20], empty="none")
                ),
            },
        )

    return _check


raw_checks = [make(source) for source in SOURCES for make in (_listing_check, _quarantine_check)]
