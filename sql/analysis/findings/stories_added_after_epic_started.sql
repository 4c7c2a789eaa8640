-- drift stories_added_after_epic_started (epics): issues created under the epic after
-- the epic itself started (drift.work_started_category), up to as_of: scope that grew
-- once the feature was under way. Evidence: the added issues and when.
WITH started AS (
    SELECT * FROM analysis.subjects WHERE subject_type = 'issue' AND is_epic
)
SELECT
    md5('drift|stories_added_after_epic_started|issue|' || e.subject_key) AS finding_id,
    'drift' AS kind, 'stories_added_after_epic_started' AS rule_id, 'issue' AS subject_type,
    e.subject_key,
    policy_text('$.drift.stories_added_after_epic_started.severity') AS severity,
    as_of() AS detected_at,
    'Scope grew after the epic started: ' || e.subject_key
        || coalesce(' "' || any_value(e.title) || '"', '') || ' — ' || count(*)
        || ' issue(s) added after ' || strftime(any_value(e.started_at), '%Y-%m-%d') AS summary,
    to_json({
        subject: {type: 'issue', key: e.subject_key, title: any_value(e.title),
                  url: any_value(e.web_url), project: any_value(e.project),
                  raw_id: any_value(e.raw_id)},
        started_at: any_value(e.started_at),
        added: list({key: c.subject_key, type: c.issue_type, created_at: c.created_at,
                     url: c.web_url} ORDER BY c.created_at, c.subject_key)
    }) AS evidence,
    any_value(e.project) AS project,
    any_value(e.web_url) AS web_url
FROM started e
JOIN analysis.subjects c
  ON c.subject_type = 'issue' AND c.epic_key = e.subject_key AND c.created_at > e.started_at
WHERE e.started_at IS NOT NULL
GROUP BY e.subject_key
