-- rework bug_traced_to_story (bugs): a bug (rework.bug_types) linked, read from the bug's
-- side, by one of jira.bug_link_types ("is caused by", "relates to") to an issue of
-- rework.traced_to_types that was done (its first move into done) at most
-- rework.bug_window_days before the bug was created. item_key is that story: the rework
-- is charged to it. effort: hours from the bug's creation to its first move into done
-- (or to as_of).
WITH first_done AS (
    SELECT issue_key, min(changed_at) AS at
    FROM chain.status_transitions
    WHERE to_category = 'done' AND changed_at <= as_of()
    GROUP BY issue_key
),
bugs AS (
    SELECT * FROM chain.work_items
    WHERE created_at <= as_of()
      AND list_contains(lowered(policy_list('$.rework.bug_types')), lower(issue_type))
),
traced AS (
    SELECT b.issue_key AS bug_key, b.summary AS bug_title, b.web_url AS bug_url,
           b.created_at AS bug_created_at, b.raw_id, b.project_key, b.story_points,
           l.phrase, s.issue_key AS story_key, s.web_url AS story_url, d.at AS story_done_at
    FROM bugs b
    JOIN chain.issue_links l ON l.issue_key = b.issue_key
    JOIN chain.work_items s ON s.issue_key = l.other_key
    JOIN first_done d ON d.issue_key = s.issue_key
    WHERE list_contains(lowered(policy_list('$.jira.bug_link_types')), lower(l.phrase))
      AND list_contains(lowered(policy_list('$.rework.traced_to_types')), lower(s.issue_type))
      AND b.created_at >= d.at
      AND b.created_at - d.at <= to_days(TRY_CAST(policy_text('$.rework.bug_window_days') AS INTEGER))
)
SELECT
    md5('rework|bug_traced_to_story|' || t.bug_key || '|' || t.story_key) AS event_id,
    'bug_traced_to_story'                      AS kind,
    'issue'                                    AS subject_type,
    t.bug_key                                  AS subject_key,
    t.story_key                                AS item_key,
    t.bug_created_at                           AS occurred_at,
    round(date_diff('second', t.bug_created_at, coalesce(bd.at, as_of())) / 3600.0, 2) AS effort,
    t.story_points,
    to_json({
        subject: {type: 'issue', key: t.bug_key, title: t.bug_title, url: t.bug_url,
                  raw_id: t.raw_id},
        story: {key: t.story_key, url: t.story_url, done_at: t.story_done_at},
        link: t.phrase,
        days_after_done: round(date_diff('second', t.story_done_at, t.bug_created_at) / 86400.0, 1),
        bug_done_at: bd.at
    })                                         AS evidence,
    t.project_key                              AS team,
    t.bug_url                                  AS web_url
FROM traced t
LEFT JOIN first_done bd ON bd.issue_key = t.bug_key
