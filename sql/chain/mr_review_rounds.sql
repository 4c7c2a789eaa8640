-- chain.mr_review_rounds: how many times a merge request went back for rework after
-- review, one row per merge request.
--
-- Rule: review starts at the first review event, the earliest of
--   * a comment (non-system note) by someone other than the MR author,
--   * an "approved this merge request" system note,
--   * an approval's approved_at in the MR's approval state (REST `/approvals` of newer
--     GitLab versions; a GraphQL approval state has no times: each approval's system
--     note above carries it);
-- review_rounds is the number of "added N commits" system notes (pushes to the source
-- branch) created after that moment. GraphQL gives note times to the second: a push in
-- the same second as the review note counts when its note id (GitLab's ids only grow)
-- is the later one. An MR never reviewed has 0 rounds and a NULL
-- first_review_at. Pushes before the first review are initial work, not rework.
-- Built by key (lib/incremental.KEYED): a night derives again the merge requests whose
-- objects were stored since, `rebuilds(mr_key)`.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.mr_review_rounds AS
WITH mrs AS (
    SELECT * FROM chain.merge_requests WHERE rebuilds(mr_key)
),
notes AS (
    SELECT * FROM chain.mr_notes WHERE rebuilds(mr_key)
),
approvals AS (
    SELECT object_key, first_approved_at AS at
    FROM chain.mr_approvals
    WHERE object_key IN (SELECT object_key FROM mrs) AND first_approved_at IS NOT NULL
),
note_reviews AS (
    SELECT n.mr_key, min(n.created_at) AS at,
           arg_min(n.note_id, (n.created_at, n.note_id)) AS note_id
    FROM notes n
    JOIN mrs m USING (mr_key)
    WHERE n.kind = 'approved'
       OR (n.kind = 'comment' AND n.author IS DISTINCT FROM m.author)
    GROUP BY n.mr_key
),
first_review AS (
    SELECT m.mr_key,
           CASE WHEN nr.at IS NULL THEN ap.at
                WHEN ap.at IS NULL THEN nr.at
                ELSE least(nr.at, ap.at) END AS at,
           CASE WHEN ap.at IS NULL OR nr.at <= ap.at THEN nr.note_id END AS note_id
    FROM mrs m
    LEFT JOIN note_reviews nr USING (mr_key)
    LEFT JOIN approvals ap ON ap.object_key = m.object_key
)
SELECT
    f.mr_key,
    count(n.note_id) FILTER (WHERE n.created_at > f.at
                             OR (n.created_at = f.at AND n.note_id > f.note_id))::INTEGER
                                                                 AS review_rounds,
    f.at                                                         AS first_review_at,
    count(n.note_id)::INTEGER                                    AS pushes
FROM first_review f
LEFT JOIN notes n ON n.mr_key = f.mr_key AND n.kind = 'added_commits'
GROUP BY f.mr_key, f.at, f.note_id
ORDER BY f.mr_key;
