-- analysis.linked_pages: Confluence pages linked to a Jira issue at as_of, one row per
-- (issue, page, label). A page belongs to an issue when it mentions the key as a whole
-- word (Jira macro, /browse link or text) or the issue has a remote link to it.
--   linked_at  a mention: the first page version that carried it; a remote link: the
--              page's creation (Jira gives remote links no date)
-- Labels are the page's current labels (Confluence keeps no label history in v1).
CREATE SCHEMA IF NOT EXISTS analysis;

CREATE OR REPLACE TABLE analysis.linked_pages AS
WITH pages AS (
    SELECT * FROM chain.pages WHERE coalesce(created_at, last_modified) <= as_of()
),
issues AS (
    SELECT issue_key FROM chain.work_items WHERE created_at <= as_of()
),
links AS (
    SELECT m.issue_key, m.page_id, 'page_' || m.found_by AS found_by,
           m.first_seen_at AS linked_at, m.first_version AS linked_in_version
    FROM chain.page_mentions m
    WHERE m.first_seen_at <= as_of()
    UNION ALL
    SELECT r.issue_key, r.page_id, 'remote_link', p.created_at, 1
    FROM chain.remote_links r JOIN pages p USING (page_id)
    WHERE r.page_id IS NOT NULL
),
earliest AS (
    SELECT issue_key, page_id,
           min(linked_at)                                AS linked_at,
           arg_min(found_by, {t: linked_at, k: found_by}) AS found_by,
           arg_min(linked_in_version, {t: linked_at, k: found_by}) AS linked_in_version,
           list(DISTINCT found_by ORDER BY found_by)     AS found_by_all
    FROM links
    WHERE issue_key IN (SELECT issue_key FROM issues)
    GROUP BY issue_key, page_id
)
SELECT e.issue_key, e.page_id, l.label, e.linked_at, e.found_by, e.found_by_all,
       e.linked_in_version, p.title, p.space_key, p.created_at AS page_created_at,
       p.web_url, p.raw_id, as_of() AS as_of
FROM earliest e
JOIN pages p USING (page_id)
JOIN chain.page_labels l USING (page_id)
ORDER BY e.issue_key, e.page_id, l.label;
