-- chain.links: the links of the artifact chain, one row per link and per way it was
-- found, so every link carries its evidence.
--   issue -> epic          epic_link: the Epic Link field (Server) or parent (Cloud)
--   issue -> merge_request key_in_title | key_in_source_branch | key_in_description
--   issue -> page          page_jira_macro | page_text (the page mentions the key as a
--                          whole word) | remote_link (the issue links to the page)
--   epic  -> repository    merge_request_of_story: a merge request of the epic or of one
--                          of its stories lives in that repository
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.links AS
WITH issue_links AS (
    SELECT 'issue' AS from_type, issue_key AS from_key, 'epic' AS to_type,
           epic_key AS to_key, 'epic_link' AS found_by
    FROM chain.work_items WHERE epic_key IS NOT NULL
    UNION ALL
    SELECT 'issue', issue_key, 'merge_request', mr_key, 'key_in_' || found_in
    FROM chain.mr_mentions
    UNION ALL
    SELECT 'issue', issue_key, 'page', page_id, 'page_' || found_by
    FROM chain.page_mentions
    UNION ALL
    SELECT 'issue', issue_key, 'page', page_id, 'remote_link'
    FROM chain.remote_links WHERE page_id IS NOT NULL
),
epic_repos AS (
    SELECT DISTINCT 'epic' AS from_type, coalesce(w.epic_key, w.issue_key) AS from_key,
           'repository' AS to_type, mr.project_path AS to_key,
           'merge_request_of_story' AS found_by
    FROM chain.mr_mentions m
    JOIN chain.work_items w ON w.issue_key = m.issue_key
    JOIN chain.merge_requests mr ON mr.mr_key = m.mr_key
    WHERE w.epic_key IS NOT NULL OR w.issue_type = 'Epic'
)
SELECT DISTINCT from_type, from_key, to_type, to_key, found_by FROM issue_links
UNION
SELECT from_type, from_key, to_type, to_key, found_by FROM epic_repos
ORDER BY ALL;
