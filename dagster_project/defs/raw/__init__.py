"""Raw layer: one asset per source, appending API objects as received.

Each asset is a graph: the policy's units of the source (``lib/scopes.py``), one fetch
step per unit into its own staging store (pool named after the source), and one load step
into the database (pool ``duckdb``); see ``dagster_project/raw_assets.py``.
"""

import dagster as dg

# One more attempt of a unit's fetch, after lib/retry.py's per-request retries gave up
# (a server down for a minute): committed pages are kept, so the attempt resumes.
RAW_RETRY_POLICY = dg.RetryPolicy(
    max_retries=1, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
