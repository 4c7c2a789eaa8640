-- requirement observability_hooks: held (requirements.observability_sources)
--   runbook_sections  from the later of (a runbook page linked to a scope issue) and (its
--                     first version, up to as_of, carrying every confluence.runbook_sections
--                     heading: "Dashboards" and "Alerts" by default)
--   changed_paths     merge requests whose changes touch ingest.observability_globs, from
--                     the moment they were opened (GitLab gives the final diff only)
WITH scoped AS (
    SELECT subject_type, subject_key, unnest(scope_issues) AS issue_key FROM analysis.subjects
),
sectioned AS (
    SELECT v.page_id, min(v.number) AS version, arg_min(v.edited_at, v.number) AS at
    FROM chain.page_versions v
    WHERE v.edited_at <= as_of()
      AND list_has_all(heading_keys(v.headings),
                       heading_keys(policy_list('$.confluence.runbook_sections')))
    GROUP BY v.page_id
)
SELECT
    s.subject_type, s.subject_key, 'observability_hooks' AS requirement,
    greatest(p.linked_at, x.at) AS held_from, CAST(NULL AS TIMESTAMPTZ) AS held_until,
    to_json({
        source: 'confluence', object: 'page', key: p.page_id, title: p.title, url: p.web_url,
        found_in: 'runbook with sections ' || array_to_string(policy_list('$.confluence.runbook_sections'), ', ')
                  || ' since version ' || x.version,
        linked_to: p.issue_key, linked_by: p.found_by, raw_id: p.raw_id
    }) AS evidence
FROM scoped s
JOIN analysis.linked_pages p USING (issue_key)
JOIN sectioned x USING (page_id)
WHERE p.label = policy_text('$.confluence.labels.runbook')
  AND list_contains(policy_list('$.requirements.observability_sources'), 'runbook_sections')
UNION ALL
SELECT
    'merge_request', m.mr_key, 'observability_hooks', m.created_at, NULL,
    to_json({
        source: 'gitlab', object: 'merge_request', key: m.mr_key, url: m.web_url,
        found_in: 'changes under ' || array_to_string(policy_list('$.ingest.observability_globs'), ', '),
        paths: list(DISTINCT c.new_path ORDER BY c.new_path), raw_id: m.raw_id
    })
FROM chain.merge_requests m
JOIN chain.mr_changes c USING (mr_key)
WHERE m.created_at <= as_of()
  AND list_contains(policy_list('$.requirements.observability_sources'), 'changed_paths')
  AND NOT c.deleted_file
  AND glob_matches(c.new_path, policy_list('$.ingest.observability_globs'))
GROUP BY m.mr_key, m.created_at, m.web_url, m.raw_id
