"""The raw assets fanned out over the policy's units, through Dagster: a scope listed entry
by entry ingests what the whole scope does, and a run whose load step failed after its
fetches loses nothing."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import dagster as dg
import pytest
import requests
import yaml

from dagster_project.defs.raw import RAW_RETRY_POLICY
from dagster_project.lib.scopes import safe_name
from dagster_project.lib.staging import staging_dir
from tests.conftest import HANDMADE, sandbox_stats
from tests.ingest.harness import definitions, materialize, staged, table

RAW_AND_CHAIN = 'group:raw or group:chain or key:"analysis/ingest_completeness"'
# Every project, group and space of the handmade dataset, one unit each; project 201 is
# also in the acme/payments group.
EXPLICIT = {
    "jira_projects": ["PAY", "WEB"],
    "gitlab_groups": ["acme/payments"],
    "gitlab_projects": [203, 201],
    "confluence_spaces": ["DOC", "OPS"],
}


def use_policy(tmp_path: Path, monkeypatch, scope: dict | None) -> None:
    path = tmp_path / f"policy-{len(list(tmp_path.glob('policy-*')))}.yaml"
    path.write_text(yaml.safe_dump({"scope": scope} if scope else {}))
    monkeypatch.setenv("DRIFTGATE_POLICY", str(path))


def chain_tables(db: Path) -> dict[str, list[tuple]]:
    names = [n for (n,) in table(db, "SELECT table_name FROM duckdb_tables() "
                                     "WHERE schema_name = 'chain' ORDER BY 1")]  # fmt: skip
    return {
        # raw_id numbers rows per database
        n: table(db, f"SELECT COLUMNS(lambda c: c NOT LIKE '%raw_id') FROM chain.{n} ORDER BY ALL")  # noqa: S608
        for n in names
    }


def test_the_raw_assets_fan_out_with_dagster_pools():
    """Per source: a units op, a fetch op in the source's pool with the raw retry policy,
    a load op in pool duckdb; every other step that opens the database in pool duckdb;
    the nightly job in process unless its run config says otherwise."""
    defs = definitions()
    for source in ("jira", "gitlab", "confluence"):
        graph = defs.resolve_assets_def(dg.AssetKey(["raw", source])).node_def
        ops = {node.name: node.definition for node in graph.nodes}
        assert set(ops) == {f"{source}_units", f"fetch_{source}_unit", f"load_{source}"}
        assert ops[f"fetch_{source}_unit"].pool == source
        policy = ops[f"fetch_{source}_unit"].retry_policy
        assert policy == RAW_RETRY_POLICY
        assert policy.max_retries == 1 and policy.delay == 30
        assert policy.backoff == dg.Backoff.EXPONENTIAL and policy.jitter == dg.Jitter.PLUS_MINUS
        assert ops[f"load_{source}"].pool == "duckdb"
        # checks the source answers and records its instance in the database
        assert ops[f"{source}_units"].pool == "duckdb"
    others = [a for a in defs.assets if a.key.path[0] != "raw"] + [
        c for c in defs.asset_checks if all(s.name != "freshness_check" for s in c.check_specs)
    ]  # freshness checks read the instance's event log, not the database
    assert {a.node_def.pool for a in others} == {"duckdb"}
    nightly = defs.resolve_job_def("nightly")
    assert nightly.executor_def.name == "multi_or_in_process_executor"
    assert nightly.run_config == {"execution": {"config": {"in_process": {}}}}
    assert defs.resolve_job_def("snapshot_backfill").executor_def.name == "in_process"


def test_a_scope_listed_entry_by_entry_ingests_what_the_whole_scope_does(
    serve, tmp_path, monkeypatch
):
    url = serve(HANDMADE).url
    whole, units = tmp_path / "whole.duckdb", tmp_path / "units.duckdb"
    use_policy(tmp_path, monkeypatch, None)
    materialize(url, whole, RAW_AND_CHAIN)
    use_policy(tmp_path, monkeypatch, EXPLICIT)
    result = materialize(url, units, RAW_AND_CHAIN)

    folder = staging_dir(units)
    stores = {p.relative_to(folder).as_posix() for p in folder.rglob("*.duckdb")}
    assert stores == {
        "jira/project_PAY.duckdb",
        "jira/project_WEB.duckdb",
        f"gitlab/{safe_name('group', 'acme/payments')}.duckdb",
        "gitlab/project_201.duckdb",
        "gitlab/project_203.duckdb",
        "confluence/space_DOC.duckdb",
        "confluence/space_OPS.duckdb",
    }
    current = (
        "SELECT source, object_type, object_key FROM raw.latest WHERE NOT deleted ORDER BY ALL"
    )
    assert table(units, current) == table(whole, current)
    assert chain_tables(units) == chain_tables(whole)
    # Listings per unit add up to the whole source's, but for project 201 and its merge
    # requests: listed in both of their scopes, they count twice, as they do when one
    # store lists the same two scopes (ingest_completeness sums scopes).
    completeness = "SELECT * EXCLUDE (as_of) FROM analysis.ingest_completeness"
    got = {row[:2]: row[2:] for row in table(units, completeness)}
    want = {row[:2]: row[2:] for row in table(whole, completeness)}
    twice = len([k for (k,) in table(units, "SELECT object_key FROM raw.latest WHERE "
                                            "object_type = 'merge_request' AND NOT deleted")
                 if k.startswith("201!")])  # fmt: skip
    expected, stored, quarantined, missing, reasons = want[("gitlab", "merge_request")]
    want[("gitlab", "merge_request")] = (expected + twice, stored, quarantined, twice, reasons)
    expected, stored, quarantined, missing, reasons = want[("gitlab", "project")]
    want[("gitlab", "project")] = (expected + 1, stored, quarantined, 1, reasons)
    assert got == want
    # Project 201 and its merge requests were fetched by two units, stored once.
    twice = (
        "SELECT object_type, object_key FROM raw.objects "
        "GROUP BY object_type, object_key, content_hash HAVING count(*) > 1"
    )
    assert table(units, twice) == []
    (gitlab,) = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["raw", "gitlab"])
    ]
    assert gitlab["units"].value == 3
    assert gitlab["projects"].value == 4  # 201 counted by both of its units


def test_a_run_whose_load_failed_loses_nothing(serve, tmp_path, monkeypatch):
    """Fetched into the staging stores, then the load step failed (killed, a full disk):
    the next run fetches only what changed and loads what the first run fetched."""
    emulator = serve(HANDMADE)
    use_policy(tmp_path, monkeypatch, {"jira_projects": ["PAY", "WEB"]})
    db = tmp_path / "dg.duckdb"
    selection = ['key:"raw/jira"', 'key:"chain/work_items"']

    def fail(*args, **kwargs):
        raise OSError("No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr("dagster_project.raw_assets.load_units", fail)
        with pytest.raises(OSError, match="No space left"):
            materialize(emulator.url, db, selection)
    gc.collect()  # the failed step's database connection, held by the traceback
    staged_issues = "SELECT count(*) FROM raw.current WHERE object_type = 'issue'"
    assert table(staged(db, "jira", "project_PAY"), staged_issues)[0][0] == 13
    assert table(staged(db, "jira", "project_WEB"), staged_issues)[0][0] == 12

    requests.delete(f"{emulator.url}/_sandbox/stats", timeout=5)
    materialize(emulator.url, db, selection)
    again = sandbox_stats(emulator.url)["by_endpoint"]
    assert not any("remotelink" in endpoint for endpoint in again)  # no issue fetched again
    issues = HANDMADE / "jira" / "issues.jsonl"
    keys = {json.loads(line)["key"] for line in issues.read_text().splitlines() if line}
    assert {k for (k,) in table(db, "SELECT issue_key FROM chain.work_items")} == keys


def test_narrowing_the_scope_moves_a_database_to_the_new_units(serve, tmp_path, monkeypatch):
    """From the whole of Jira (unit all) to one project listed: the project's unit
    fetches from scratch, stores nothing main already has, and the issues no unit holds
    any more leave the chain; completeness counts the new unit's listings only."""
    url = serve(HANDMADE).url
    db = tmp_path / "dg.duckdb"
    selection = ['key:"raw/jira"', 'key:"chain/work_items"', 'key:"analysis/ingest_completeness"']
    use_policy(tmp_path, monkeypatch, None)
    materialize(url, db, selection)
    rows = table(db, "SELECT count(*) FROM raw.objects WHERE NOT deleted")[0][0]

    use_policy(tmp_path, monkeypatch, {"jira_projects": ["PAY"]})
    materialize(url, db, selection)

    assert table(db, "SELECT count(*) FROM raw.objects WHERE NOT deleted")[0][0] == rows
    items = {k for (k,) in table(db, "SELECT issue_key FROM chain.work_items")}
    assert len(items) == 13 and all(k.startswith("PAY-") for k in items)
    gone = "SELECT count(*) FROM raw.latest WHERE object_type = 'issue' AND deleted"
    assert table(db, gone) == [(12,)]  # WEB's, out of scope now
    completeness = (
        "SELECT expected, stored, missing FROM analysis.ingest_completeness "
        "WHERE source = 'jira' AND object_type = 'issue'"
    )
    assert table(db, completeness) == [(13, 13, 0)]
