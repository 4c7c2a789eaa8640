-- chain.mr_change_files: the files of each stored /changes answer, in the answer's order,
-- with the lines added and removed counted from each diff's hunks (lib/gitlab_text.py).
-- A diff GitLab left out (too large, binary, collapsed) counts as 0 and 0. Each row
-- comes from one raw object, so the table is built object by object (lib/incremental.py):
-- a diff is counted once, not every night; chain.mr_changes gives the rows their
-- merge request's key.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.mr_change_files AS
WITH changes AS (
    -- one parse of each payload (see work_items.sql)
    SELECT c.object_key, c.raw_id,
           unnest(list_transform(json_transform(c.payload, '{"changes": [{
               "old_path": "VARCHAR", "new_path": "VARCHAR", "new_file": "VARCHAR",
               "renamed_file": "VARCHAR", "deleted_file": "VARCHAR", "diff": "VARCHAR"}]}').changes,
               lambda change, position: {'change': change, 'position': position})) AS ch
    FROM raw.current_objects('gitlab', 'mr_change') c
)
SELECT
    c.object_key,
    c.ch.position                                            AS position,
    c.ch.change.old_path                                     AS old_path,
    c.ch.change.new_path                                     AS new_path,
    coalesce(TRY_CAST(c.ch.change.new_file AS BOOLEAN), false)     AS new_file,
    coalesce(TRY_CAST(c.ch.change.renamed_file AS BOOLEAN), false) AS renamed_file,
    coalesce(TRY_CAST(c.ch.change.deleted_file AS BOOLEAN), false) AS deleted_file,
    coalesce(c.counts.added, 0)                              AS added_lines,
    coalesce(c.counts.removed, 0)                            AS removed_lines,
    c.raw_id
FROM (SELECT *, driftgate_diff_counts(ch.change.diff) AS counts FROM changes) c
ORDER BY c.object_key, position;
