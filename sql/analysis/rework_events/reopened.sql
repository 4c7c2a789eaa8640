-- rework reopened (issues): a transition from a done-category status to a status of
-- another category, up to as_of (a move inside the done category is not a reopen).
-- effort: hours from the reopen to the issue's next move into done (or to as_of while it
-- is still open); story_points: the issue's points.
WITH moves AS (
    SELECT t.*,
           (SELECT min(n.changed_at) FROM chain.status_transitions n
             WHERE n.issue_key = t.issue_key AND n.changed_at > t.changed_at
               AND n.changed_at <= as_of() AND n.to_category = 'done') AS done_again_at
    FROM chain.status_transitions t
    WHERE t.from_category = 'done' AND t.to_category IS DISTINCT FROM 'done'
      AND t.changed_at <= as_of()
)
SELECT
    md5('rework|reopened|' || m.issue_key || '|' || m.history_id) AS event_id,
    'reopened'                                 AS kind,
    'issue'                                    AS subject_type,
    m.issue_key                                AS subject_key,
    m.issue_key                                AS item_key,
    m.changed_at                               AS occurred_at,
    round(date_diff('second', m.changed_at, coalesce(m.done_again_at, as_of())) / 3600.0, 2)
                                               AS effort,
    w.story_points,
    to_json({
        subject: {type: 'issue', key: m.issue_key, title: w.summary, url: w.web_url,
                  raw_id: m.raw_id},
        reopened: {"from": m.from_status, "to": m.to_status, "at": m.changed_at,
                   "by": m.author, changelog_history_id: m.history_id},
        done_again_at: m.done_again_at
    })                                         AS evidence,
    w.project_key                              AS team,
    w.web_url
FROM moves m
JOIN chain.work_items w ON w.issue_key = m.issue_key
WHERE w.created_at <= as_of()
