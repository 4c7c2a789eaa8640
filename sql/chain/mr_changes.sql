-- chain.mr_changes: the files a merge request changes (its /changes answer, parsed once
-- per answer into chain.mr_change_files), with the lines added and removed, under the
-- merge request's key.
-- Built by key (lib/incremental.KEYED): a night derives again the merge requests whose
-- objects were stored since, `rebuilds(mr_key)`.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.mr_changes AS
SELECT
    m.mr_key,
    f.old_path,
    f.new_path,
    f.new_file,
    f.renamed_file,
    f.deleted_file,
    f.added_lines,
    f.removed_lines,
    f.raw_id
FROM chain.mr_change_files f
JOIN chain.merge_requests m ON m.object_key = f.object_key
WHERE rebuilds(m.mr_key)
ORDER BY m.mr_key, f.position;
