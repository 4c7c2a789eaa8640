-- chain.mr_changes: the files a merge request changes (its /changes answer), with the
-- lines added and removed counted from each diff's hunks (lib/gitlab_text.py). A diff
-- GitLab left out (too large, binary, collapsed) counts as 0 and 0.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.mr_changes AS
WITH changes AS (
    SELECT c.object_key, c.raw_id, ch.key AS position, ch.value AS change,
           driftgate_diff_counts(ch.value->>'$.diff') AS counts
    FROM raw.current_objects('gitlab', 'mr_change') c, json_each(c.payload, '$.changes') ch
)
SELECT
    m.mr_key,
    c.change->>'$.old_path'                                  AS old_path,
    c.change->>'$.new_path'                                  AS new_path,
    coalesce(TRY_CAST(c.change->>'$.new_file' AS BOOLEAN), false)     AS new_file,
    coalesce(TRY_CAST(c.change->>'$.renamed_file' AS BOOLEAN), false) AS renamed_file,
    coalesce(TRY_CAST(c.change->>'$.deleted_file' AS BOOLEAN), false) AS deleted_file,
    coalesce(c.counts.added, 0)                              AS added_lines,
    coalesce(c.counts.removed, 0)                            AS removed_lines,
    c.raw_id
FROM changes c
JOIN chain.merge_requests m ON m.object_key = c.object_key
ORDER BY m.mr_key, c.position;
