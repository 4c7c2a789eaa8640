-- requirement api_spec (issues and merge requests, judged on their epics), held by any
-- of requirements.api_spec_sources:
--   repository_file  a file matching ingest.spec_globs at the default branch of a
--                    repository linked to the epic (a merge request naming the epic or
--                    one of its issues lives there), from the first merge of a merge
--                    request in that repository touching the file, else from the moment
--                    the repository was first linked (only today's files are read)
--   approved_page    a page labelled api-spec linked to a scope issue, from the later of
--                    the link and its first approved version
WITH subject_epics AS (
    SELECT subject_type, subject_key, unnest(epics) AS epic_key FROM analysis.subjects
),
epic_repos AS (
    SELECT coalesce(w.epic_key, w.issue_key) AS epic_key, m.project_path,
           min(m.created_at) AS linked_at
    FROM chain.mr_mentions x
    JOIN chain.work_items w ON w.issue_key = x.issue_key
    JOIN chain.merge_requests m ON m.mr_key = x.mr_key
    WHERE m.created_at <= as_of()
    GROUP BY ALL
),
spec_files AS (
    SELECT f.project_path, f.path, f.raw_id,
           (SELECT min(m.merged_at) FROM chain.mr_changes c
              JOIN chain.merge_requests m USING (mr_key)
             WHERE m.project_path = f.project_path AND c.new_path = f.path
               AND m.merged_at <= as_of()) AS first_merged_at
    FROM chain.repository_files f
    WHERE f.kind = 'spec' AND f.at_default_branch
),
scoped AS (
    SELECT subject_type, subject_key, unnest(scope_issues) AS issue_key FROM analysis.subjects
),
approvals AS (
    -- the first approved version; once it is before as_of it is the first by as_of too
    SELECT page_id, first_approved_version AS version, first_approved_at AS approved_at
    FROM chain.pages
    WHERE first_approved_at <= as_of()
),
repo_firsts AS (
    -- per repository, the spec file that holds first for any epic linked to it: the first
    -- merged one (earliest merge, then key), and, of the files no merge request touched
    -- (they hold from the moment the repository was linked), the first by key. Every
    -- other file of the repository holds later, so subjects x files is never built.
    SELECT project_path,
           min({t: first_merged_at, k: project_path || ':' || path, path: path, raw_id: raw_id})
               FILTER (WHERE first_merged_at IS NOT NULL) AS merged,
           min({k: project_path || ':' || path, path: path, raw_id: raw_id})
               FILTER (WHERE first_merged_at IS NULL) AS unmerged
    FROM spec_files
    GROUP BY project_path
),
epic_files AS (
    SELECT r.epic_key, r.project_path, f.merged.t AS held_from, f.merged.k AS key,
           f.merged.path AS path, f.merged.raw_id AS raw_id
    FROM epic_repos r JOIN repo_firsts f USING (project_path)
    WHERE f.merged IS NOT NULL
    UNION ALL
    SELECT r.epic_key, r.project_path, r.linked_at, f.unmerged.k, f.unmerged.path, f.unmerged.raw_id
    FROM epic_repos r JOIN repo_firsts f USING (project_path)
    WHERE f.unmerged IS NOT NULL
),
files_per_subject AS (
    -- every spec file of every linked repository holds it: keep the earliest per subject
    SELECT s.subject_type, s.subject_key, f.held_from,
           {source: 'gitlab', object: 'repository_file', key: f.key,
            found_in: 'spec file at the default branch of ' || f.project_path, path: f.path,
            epic: s.epic_key, raw_id: f.raw_id} AS evidence
    FROM subject_epics s
    JOIN epic_files f USING (epic_key)
    WHERE list_contains(policy_list('$.requirements.api_spec_sources'), 'repository_file')
)
SELECT
    subject_type, subject_key, 'api_spec' AS requirement,
    min(held_from) AS held_from,
    CAST(NULL AS TIMESTAMPTZ) AS held_until,
    to_json(arg_min(evidence, {t: held_from, k: evidence.key})) AS evidence
FROM files_per_subject
GROUP BY subject_type, subject_key
UNION ALL
SELECT
    s.subject_type, s.subject_key, 'api_spec', greatest(p.linked_at, a.approved_at), NULL,
    to_json({
        source: 'confluence', object: 'page', key: p.page_id, title: p.title, url: p.web_url,
        found_in: 'page labelled ' || p.label || ', approved in version ' || a.version,
        linked_to: p.issue_key, linked_by: p.found_by, raw_id: p.raw_id
    })
FROM scoped s
JOIN analysis.linked_pages p USING (issue_key)
JOIN approvals a USING (page_id)
WHERE p.label = policy_text('$.confluence.labels.api_spec')
  AND list_contains(policy_list('$.requirements.api_spec_sources'), 'approved_page')
