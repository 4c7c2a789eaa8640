"""Raw layer: one asset per source, appending API objects as received."""

import dagster as dg

# One more attempt of a whole raw asset, after lib/retry.py's per-request retries gave up
# (a server down for a minute): committed pages are kept, so the attempt resumes.
RAW_RETRY_POLICY = dg.RetryPolicy(
    max_retries=1, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
