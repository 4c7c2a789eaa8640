-- drift spec_drift_from_approved (epics): an API spec (ingest.spec_globs) at a
-- repository's default branch no longer matches the approved one, structurally: the
-- same file at the newest tag matching drift.spec_drift_from_approved.approved_tags
-- (newest by name; only today's files are read). Identical blobs are skipped; otherwise
-- lib/spec_diff.py compares operations/channels, parameters, request and response
-- schemas, status codes and security after resolving local $refs, so reordering and
-- reformatting give nothing. The finding goes to every epic whose merge requests changed
-- the file; it rates breaking_severity when a change is breaking. A spec that cannot be
-- read is a finding with the reason, never a crash. Evidence: the compared refs and
-- blobs, every change (category, breaking, location, before/after) and the merge
-- requests that touched the file.
WITH files AS (
    SELECT f.project_path, f.path, f.ref, f.at_default_branch, f.blob_id, f.raw_id,
           o.payload->>'$.content' AS content
    FROM chain.repository_files f
    JOIN raw.current_objects('gitlab', 'file') o ON o.raw_id = f.raw_id
    WHERE f.kind = 'spec'
),
approved AS (
    SELECT project_path, path,
           arg_max({ref: ref, blob_id: blob_id, content: content, raw_id: raw_id}, ref) AS a
    FROM files
    WHERE NOT at_default_branch
      AND len(list_filter(policy_list('$.drift.spec_drift_from_approved.approved_tags'),
                          lambda g: ref GLOB g)) > 0
    GROUP BY project_path, path
),
compared AS MATERIALIZED (
    SELECT c.project_path, c.path, c.ref, c.blob_id, c.raw_id, ap.a,
           driftgate_spec_diff(ap.a.content, c.content) AS d
    FROM files c
    JOIN approved ap USING (project_path, path)
    WHERE c.at_default_branch AND c.blob_id IS DISTINCT FROM ap.a.blob_id
),
drifted AS (
    SELECT * FROM compared WHERE d.error IS NOT NULL OR len(d.changes) > 0
),
touching AS (
    -- the merge requests that touched each drifted file (no other file's list is built)
    SELECT m.project_path, c.new_path AS path,
           list({key: m.mr_key, url: m.web_url, state: m.state, merged_at: m.merged_at}
                ORDER BY m.merged_at NULLS LAST, m.mr_key) AS mrs
    FROM chain.mr_changes c
    JOIN chain.merge_requests m USING (mr_key)
    SEMI JOIN drifted d ON d.project_path = m.project_path AND d.path = c.new_path
    WHERE m.created_at <= as_of()
    GROUP BY ALL
),
owners AS (
    SELECT DISTINCT m.project AS project_path, c.new_path AS path, unnest(m.epics) AS epic_key
    FROM analysis.subjects m
    JOIN chain.mr_changes c ON c.mr_key = m.subject_key
    WHERE m.subject_type = 'merge_request'
),
per_epic AS (
    SELECT o.epic_key,
           list({project: d.project_path, path: d.path, ref: d.ref, blob_id: d.blob_id,
                 approved_ref: d.a.ref, approved_blob_id: d.a.blob_id,
                 raw_id: d.raw_id, approved_raw_id: d.a.raw_id,
                 error: d.d.error, breaking: d.d.breaking, changes: d.d.changes,
                 unresolved_refs: d.d.unresolved_refs, merge_requests: t.mrs}
                ORDER BY d.project_path, d.path) AS specs,
           sum(coalesce(d.d.breaking, 0))          AS breaking,
           sum(len(coalesce(d.d.changes, [])))     AS changes,
           bool_or(d.d.error IS NOT NULL)          AS unreadable
    FROM drifted d
    JOIN owners o USING (project_path, path)
    LEFT JOIN touching t USING (project_path, path)
    GROUP BY o.epic_key
)
SELECT
    md5('drift|spec_drift_from_approved|issue|' || p.epic_key) AS finding_id,
    'drift' AS kind, 'spec_drift_from_approved' AS rule_id, 'issue' AS subject_type,
    p.epic_key AS subject_key,
    CASE WHEN p.breaking > 0 THEN policy_text('$.drift.spec_drift_from_approved.breaking_severity')
         ELSE policy_text('$.drift.spec_drift_from_approved.severity') END AS severity,
    as_of() AS detected_at,
    'API spec drifted from its approved version: ' || p.epic_key
        || coalesce(' "' || e.title || '"', '') || ' — '
        || array_to_string(list_transform(p.specs, lambda s: s.project || ':' || s.path), ', ')
        || CASE WHEN p.unreadable THEN ' (a spec could not be read)'
                ELSE ': ' || p.changes || ' change(s), ' || p.breaking || ' breaking' END AS summary,
    to_json({
        subject: {type: 'issue', key: p.epic_key, title: e.title, url: e.web_url,
                  project: e.project, raw_id: e.raw_id},
        specs: p.specs
    }) AS evidence,
    e.project,
    e.web_url
FROM per_epic p
JOIN analysis.subjects e ON e.subject_type = 'issue' AND e.subject_key = p.epic_key
