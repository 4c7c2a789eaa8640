-- chain.issue_links: Jira issue links read as sentences. On issue A, an entry with
-- outwardIssue B reads "A <outward> B"; with inwardIssue B it reads "A <inward> B".
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.issue_links AS
WITH links AS (
    -- one parse of each payload (see jira_changelog in the prelude)
    SELECT i.object_key, i.raw_id,
           unnest(json_transform(i.payload, '{"fields": {"issuelinks": [{
               "type": {"name": "VARCHAR", "inward": "VARCHAR", "outward": "VARCHAR"},
               "outwardIssue": {"key": "VARCHAR"},
               "inwardIssue": {"key": "VARCHAR"}}]}}').fields.issuelinks) AS l
    FROM raw.current_objects('jira', 'issue') i
)
SELECT
    object_key                                              AS issue_key,
    l.type.name                                             AS link_type,
    CASE WHEN l.outwardIssue.key IS NOT NULL THEN 'outward' ELSE 'inward' END
                                                            AS direction,
    CASE WHEN l.outwardIssue.key IS NOT NULL
         THEN l.type.outward ELSE l.type.inward END         AS phrase,
    coalesce(l.outwardIssue.key, l.inwardIssue.key)         AS other_key,
    raw_id
FROM links
ORDER BY issue_key, other_key;
