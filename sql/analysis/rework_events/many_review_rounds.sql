-- rework many_review_rounds (merge requests): more pushes after the first review than
-- rework.max_review_rounds (chain.mr_review_rounds: pushes are "added N commits"
-- system notes, review starts at the first comment by someone else, approval or
-- approval state), counting only notes up to as_of. item_key: an issue the merge
-- request names. effort: hours from the first review to the merge (or as_of).
WITH rounds AS (
    SELECT r.mr_key, r.first_review_at,
           count(n.note_id) FILTER (WHERE n.created_at > r.first_review_at
                                      AND n.created_at <= as_of())::INTEGER AS pushes_after_review
    FROM chain.mr_review_rounds r
    LEFT JOIN chain.mr_notes n ON n.mr_key = r.mr_key AND n.kind = 'added_commits'
    WHERE r.first_review_at <= as_of()
    GROUP BY r.mr_key, r.first_review_at
),
first_issue AS (
    SELECT mr_key, min(issue_key) AS issue_key FROM chain.mr_mentions GROUP BY mr_key
)
SELECT
    md5('rework|many_review_rounds|' || r.mr_key) AS event_id,
    'many_review_rounds'                       AS kind,
    'merge_request'                            AS subject_type,
    r.mr_key                                   AS subject_key,
    coalesce(fi.issue_key, r.mr_key)           AS item_key,
    r.first_review_at                          AS occurred_at,
    round(date_diff('second', r.first_review_at,
                    CASE WHEN m.merged_at <= as_of() THEN m.merged_at ELSE as_of() END) / 3600.0, 2)
                                               AS effort,
    CAST(NULL AS DOUBLE)                       AS story_points,
    to_json({
        subject: {type: 'merge_request', key: r.mr_key, title: m.title, url: m.web_url,
                  raw_id: m.raw_id},
        pushes_after_first_review: r.pushes_after_review,
        allowed: TRY_CAST(policy_text('$.rework.max_review_rounds') AS INTEGER),
        first_review_at: r.first_review_at
    })                                         AS evidence,
    coalesce(split_part(fi.issue_key, '-', 1), m.project_path) AS team,
    m.web_url
FROM rounds r
JOIN chain.merge_requests m USING (mr_key)
LEFT JOIN first_issue fi USING (mr_key)
WHERE m.created_at <= as_of()
  AND r.pushes_after_review > TRY_CAST(policy_text('$.rework.max_review_rounds') AS INTEGER)
