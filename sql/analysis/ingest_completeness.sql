-- analysis.ingest_completeness: per source and object type, what the source reported or
-- listed (expected), what is stored (distinct current objects), what was quarantined.
--
-- expected = the latest full listing of every scope (a project, an MR, a page...) of the
-- units the policy scopes now (raw.live_listings), using
-- the total the source reported where it reports one and the count listed otherwise;
-- never less than stored + quarantined (objects created after that listing).
-- missing  = expected - stored - quarantined: objects the source has and we do not.
CREATE SCHEMA IF NOT EXISTS analysis;

CREATE OR REPLACE TABLE analysis.ingest_completeness AS
WITH types(source, object_type, ord) AS (
    VALUES ('jira', 'issue', 1), ('jira', 'remotelink', 2), ('jira', 'field', 3),
           ('jira', 'status', 4), ('gitlab', 'project', 5), ('gitlab', 'merge_request', 6),
           ('gitlab', 'mr_change', 7), ('gitlab', 'mr_note', 8), ('gitlab', 'mr_approval', 9),
           ('gitlab', 'commit', 10), ('gitlab', 'deployment', 11), ('gitlab', 'file', 12),
           ('confluence', 'space', 13), ('confluence', 'page', 14),
           ('confluence', 'page_version', 15)
),
stored AS (
    SELECT source, object_type, count(*) AS n
    FROM raw.current WHERE NOT deleted GROUP BY ALL
),
quarantined AS (
    SELECT q.source, q.object_type,
           count(DISTINCT coalesce(q.object_key, md5(q.payload::VARCHAR))) AS n,
           string_agg(DISTINCT q.reason, '; ' ORDER BY q.reason) AS reasons
    FROM raw.quarantine q
    WHERE NOT EXISTS (
        SELECT 1 FROM raw.current c
        WHERE c.source = q.source AND c.object_type = q.object_type
          AND c.object_key = q.object_key AND NOT c.deleted)
    GROUP BY ALL
),
latest_listing AS (
    SELECT source, object_type, scope, coalesce(reported, listed) AS n
    FROM raw.live_listings  -- the listings of the units the policy scopes now
    WHERE full_listing
    QUALIFY row_number() OVER (
        PARTITION BY source, object_type, scope ORDER BY listed_at DESC) = 1
),
listed AS (
    SELECT source, object_type, sum(n) AS n FROM latest_listing GROUP BY ALL
)
SELECT
    t.source,
    t.object_type,
    greatest(coalesce(l.n, 0), coalesce(s.n, 0) + coalesce(q.n, 0))::BIGINT AS expected,
    coalesce(s.n, 0)::BIGINT                                               AS stored,
    coalesce(q.n, 0)::BIGINT                                               AS quarantined,
    (greatest(coalesce(l.n, 0), coalesce(s.n, 0) + coalesce(q.n, 0))
        - coalesce(s.n, 0) - coalesce(q.n, 0))::BIGINT                     AS missing,
    q.reasons                                                              AS quarantine_reasons,
    getvariable('as_of')::TIMESTAMPTZ                                      AS as_of
FROM types t
LEFT JOIN stored s USING (source, object_type)
LEFT JOIN quarantined q USING (source, object_type)
LEFT JOIN listed l USING (source, object_type)
ORDER BY t.ord;
