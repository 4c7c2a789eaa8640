-- rework churn (merge requests): a merged merge request removes lines that an earlier
-- merge request of the same project added, in the same file (its old path), and merged
-- less than rework.churn_window_days before it. Lines are compared by number at each
-- merge request's base (lib/gitlab_text.diff_lines): edits merged in between shift
-- them, a rename is followed through the later change's old path, and a squash merge
-- reads the same as any other. item_key: an issue the earlier merge request names.
-- effort: the later merge request's open hours times the share of its changed lines
-- that rewrote recent work. Which changes can pair is found from chain.mr_changes; only
-- the merge requests in a pair have their raw diffs read and parsed.
WITH merged AS (
    SELECT m.mr_key, m.project_path, m.merged_at, m.created_at, m.web_url, m.raw_id,
           m.object_key
    FROM chain.merge_requests m
    WHERE m.merged_at <= as_of()
),
changes AS (
    SELECT m.mr_key, m.project_path, m.merged_at, c.old_path, c.new_path, c.new_file
    FROM merged m JOIN chain.mr_changes c USING (mr_key)
),
candidates AS (
    -- which changes can rewrite which, from the typed paths: only their diffs are read
    SELECT DISTINCT later.mr_key, earlier.mr_key AS rewrites, later.old_path AS path,
           earlier.merged_at AS base_merged_at, later.merged_at
    FROM changes later
    JOIN changes earlier
      ON earlier.project_path = later.project_path AND earlier.new_path = later.old_path
     AND earlier.mr_key <> later.mr_key
     AND earlier.merged_at < later.merged_at
     AND later.merged_at - earlier.merged_at
         < to_days(TRY_CAST(policy_text('$.rework.churn_window_days') AS INTEGER))
    WHERE NOT later.new_file
),
payloads AS MATERIALIZED (
    -- selected before json_each: it would otherwise unpack every merged change set
    SELECT m.mr_key, c.payload
    FROM merged m
    JOIN raw.current_objects('gitlab', 'mr_change') c ON c.object_key = m.object_key
    WHERE m.mr_key IN (SELECT mr_key FROM candidates UNION SELECT rewrites FROM candidates)
),
lines AS MATERIALIZED (
    SELECT p.mr_key,
           ch.value->>'$.old_path' AS old_path, ch.value->>'$.new_path' AS new_path,
           coalesce(TRY_CAST(ch.value->>'$.new_file' AS BOOLEAN), false) AS new_file,
           driftgate_diff_lines(ch.value->>'$.diff') AS l
    FROM payloads p, json_each(p.payload, '$.changes') ch
),
pairs AS (
    SELECT p.mr_key, p.rewrites, p.path, p.base_merged_at, p.merged_at,
           list_intersect(later.l.removed, earlier.l.added) AS rewritten
    FROM candidates p
    JOIN lines later ON later.mr_key = p.mr_key AND later.old_path = p.path
    JOIN lines earlier ON earlier.mr_key = p.rewrites AND earlier.new_path = p.path
    WHERE NOT later.new_file
),
churned AS (
    SELECT * FROM pairs WHERE len(rewritten) > 0
),
sizes AS (
    SELECT mr_key, sum(added_lines + removed_lines) AS changed FROM chain.mr_changes GROUP BY mr_key
),
first_issue AS (
    SELECT mr_key, min(issue_key) AS issue_key FROM chain.mr_mentions GROUP BY mr_key
)
SELECT
    md5('rework|churn|' || c.mr_key || '|' || c.rewrites || '|' || c.path) AS event_id,
    'churn'                                    AS kind,
    'merge_request'                            AS subject_type,
    c.mr_key                                   AS subject_key,
    coalesce(fi.issue_key, c.rewrites)         AS item_key,
    c.merged_at                                AS occurred_at,
    round(date_diff('second', m.created_at, m.merged_at) / 3600.0
          * least(1.0, len(c.rewritten) / greatest(sz.changed, 1)), 2) AS effort,
    CAST(NULL AS DOUBLE)                       AS story_points,
    to_json({
        subject: {type: 'merge_request', key: c.mr_key, url: m.web_url, raw_id: m.raw_id},
        rewrites: {key: c.rewrites, url: e.web_url, merged_at: c.base_merged_at},
        path: c.path,
        lines: c.rewritten,
        days: round(date_diff('second', c.base_merged_at, c.merged_at) / 86400.0, 1)
    })                                         AS evidence,
    coalesce(split_part(fi.issue_key, '-', 1), m.project_path) AS team,
    m.web_url
FROM churned c
JOIN merged m ON m.mr_key = c.mr_key
JOIN merged e ON e.mr_key = c.rewrites
LEFT JOIN sizes sz ON sz.mr_key = c.rewrites
LEFT JOIN first_issue fi ON fi.mr_key = c.rewrites
