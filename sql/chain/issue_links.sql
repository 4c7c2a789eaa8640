-- chain.issue_links: Jira issue links read as sentences. On issue A, an entry with
-- outwardIssue B reads "A <outward> B"; with inwardIssue B it reads "A <inward> B".
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.issue_links AS
SELECT
    i.object_key                                            AS issue_key,
    l.value->>'$.type.name'                                 AS link_type,
    CASE WHEN l.value->>'$.outwardIssue.key' IS NOT NULL THEN 'outward' ELSE 'inward' END
                                                            AS direction,
    CASE WHEN l.value->>'$.outwardIssue.key' IS NOT NULL
         THEN l.value->>'$.type.outward' ELSE l.value->>'$.type.inward' END AS phrase,
    coalesce(l.value->>'$.outwardIssue.key', l.value->>'$.inwardIssue.key') AS other_key,
    i.raw_id
FROM raw.current_objects('jira', 'issue') i, json_each(i.payload, '$.fields.issuelinks') l
ORDER BY issue_key, other_key;
