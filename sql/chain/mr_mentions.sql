-- chain.mr_mentions: the Jira issue keys a merge request names, and where. The default
-- policy links an issue and an MR when the key appears as a whole word in the MR's
-- title, source branch or description: PAY-21 is found in "feature/PAY-21-refunds" but
-- not in "PAY-211" (the one rule of lib/issue_keys.py).
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.mr_mentions AS
WITH places AS (
    SELECT mr_key, 'title' AS found_in, title AS text, 1 AS ord FROM chain.merge_requests
    UNION ALL
    SELECT mr_key, 'source_branch', source_branch, 2 FROM chain.merge_requests
    UNION ALL
    SELECT mr_key, 'description', description, 3 FROM chain.merge_requests
),
found AS (
    SELECT mr_key, found_in, ord, unnest(driftgate_issue_keys(text)) AS issue_key
    FROM places
    WHERE text IS NOT NULL
)
SELECT mr_key, issue_key, found_in
FROM found
GROUP BY mr_key, issue_key, found_in, ord
ORDER BY mr_key, issue_key, ord;
