"""Raw layer: one asset per source, appending API objects as received.

Each asset is a graph: the policy's units of the source (``lib/scopes.py``), one fetch
step per unit into its own staging store (pool named after the source), and one load step
into the database (pool ``duckdb``); see ``dagster_project/raw_assets.py``.
"""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.lib.instances import InstanceMismatch, bind_instance
from dagster_project.lib.policy import Policy
from dagster_project.lib.rawstore import ensure_raw_schema
from dagster_project.lib.reachability import probe

# One more attempt of a unit's fetch, after lib/retry.py's per-request retries gave up
# (a server down for a minute): committed pages are kept, so the attempt resumes. A
# source that cannot be reached at all (refused, DNS, TLS, credentials) fails before any
# fetch step starts, and is not retried.
RAW_RETRY_POLICY = dg.RetryPolicy(
    max_retries=1, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def preflight(
    context: dg.OpExecutionContext,
    name: str,
    resource,  # one of defs.resources' source resources
    duckdb: DuckDBResource,
    policy: Policy,
) -> bool:
    """Whether ``name`` is read in this run, checked once before its units fan out.

    False when the source is skipped (``skip_reason``). Fails the step at once, with one
    line and no retry, when the server cannot be reached or refuses the credentials, or
    when the database holds another instance's data for this source.
    """
    skipped = resource.skip_reason()
    if skipped:
        context.log.warning(f"{name}: {skipped}")
        return False
    reach = probe(name, resource.connection(policy))
    if reach.problem is not None:
        raise dg.Failure(
            description=reach.problem.line(),
            metadata={"source": name, "host": reach.problem.host, "cause": reach.problem.cause},
            allow_retries=False,
        )
    with duckdb.get_connection() as con:
        ensure_raw_schema(con)
        try:
            bind_instance(con, name, reach.instance, context.run.run_id, where=duckdb.database)
        except InstanceMismatch as exc:
            raise dg.Failure(description=f"{name}: {exc}", allow_retries=False) from None
    return True
