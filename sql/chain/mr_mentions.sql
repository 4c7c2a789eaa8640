-- chain.mr_mentions: the Jira issue keys a merge request names, and where. The default
-- policy links an issue and an MR when the key appears as a whole word in the MR's
-- title, source branch or description: PAY-21 is found in "feature/PAY-21-refunds" but
-- not in "PAY-211" (the one rule of lib/issue_keys.py). The keys are found once per
-- merge request, in chain.merge_requests (issue_mentions).
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.mr_mentions AS
WITH found AS (
    SELECT mr_key, u.m.issue_key AS issue_key, u.m.found_in AS found_in,
           CASE u.m.found_in WHEN 'title' THEN 1 WHEN 'source_branch' THEN 2 ELSE 3 END AS ord
    FROM chain.merge_requests, unnest(issue_mentions) AS u(m)
)
SELECT mr_key, issue_key, found_in
FROM found
GROUP BY mr_key, issue_key, found_in, ord
ORDER BY mr_key, issue_key, ord;
