"""Assets whose whole logic is one SQL file: ``sql/<layer>/<table>.sql`` -> ``<layer>.<table>``.

Declared from ``defs/<layer>/*.py`` with :func:`sql_table_asset`, so a reader finds any
table's query in one hop from its asset key.
"""

from collections.abc import Sequence

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.lib import analysis_reuse
from dagster_project.lib.chainsql import build_table
from dagster_project.lib.policy import load_policy
from dagster_project.metadata import markdown_table, table_metadata
from dagster_project.run_as_of import run_as_of


def sql_table_asset(
    layer: str,
    table: str,
    *,
    deps: Sequence[dg.AssetKey | Sequence[str]],
    description: str,
    kinds: set[str] | None = None,
    summary: str | None = None,
) -> dg.AssetsDefinition:
    """``summary``: a query over the built table whose result the UI shows as a Markdown
    table beside the row count (findings per rule, gate statuses...)."""

    @dg.asset(
        key=[layer, table],
        group_name=layer,
        deps=[dg.AssetKey(d) if not isinstance(d, dg.AssetKey) else d for d in deps],
        kinds=kinds or {"duckdb", "sql"},
        owners=["team:driftgate"],
        pool="duckdb",
        description=description,
    )
    def _asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        with duckdb.get_connection() as con:
            rows = build_table(con, layer, table, load_policy(), run_as_of(context))
            kept = layer == "analysis" and analysis_reuse.was_kept(con, table)
            how = " (kept: nothing it judges changed since its last build)" if kept else ""
            context.log.info(f"{layer}.{table}: {rows} rows{how}")
            metadata = table_metadata(con, f"{layer}.{table}", rows)
            if layer == "analysis":
                metadata["kept_as_it_was"] = kept
            if summary:
                cur = con.execute(summary)
                headers = [d[0] for d in cur.description]
                metadata["summary"] = dg.MetadataValue.md(
                    markdown_table(headers, cur.fetchall(), empty="none")
                )
            return dg.MaterializeResult(metadata=metadata)

    return _asset
