-- drift scope_changed_after_start (issues): the summary, the acceptance criteria (the
-- policy's field, or the description's acceptance-criteria section) or the story points
-- changed after work started (the first move into drift.work_started_category, or the
-- creation when the issue was created there), up to as_of. A description edit that
-- leaves the acceptance-criteria section as it was is not scope. Evidence: every change
-- with its before and after values, author and changelog entry.
WITH started AS (
    SELECT * FROM analysis.subjects WHERE subject_type = 'issue'
),
changes AS (
    SELECT f.*,
           CASE
               WHEN lower(f.field) = 'summary' THEN 'summary'
               WHEN lower(f.field) = lower(policy_text('$.jira.acceptance_criteria_field'))
                   THEN 'acceptance_criteria'
               WHEN lower(f.field) = lower(policy_text('$.jira.story_points_field'))
                   THEN 'story_points'
               WHEN lower(f.field) = 'description'
                    AND driftgate_section_text(f.from_string, policy_text('$.jira.acceptance_criteria_heading'))
                        IS DISTINCT FROM
                        driftgate_section_text(f.to_string, policy_text('$.jira.acceptance_criteria_heading'))
                   THEN 'acceptance_criteria'
           END AS scope_field
    FROM chain.field_changes f
    WHERE f.changed_at <= as_of()
      AND lower(f.field) IN ('summary', 'description',
                             lower(policy_text('$.jira.acceptance_criteria_field')),
                             lower(policy_text('$.jira.story_points_field')))
),
late AS (
    SELECT s.subject_key, s.project, s.title, s.web_url, s.raw_id, s.started_at,
           list({field: c.scope_field, "at": c.changed_at,
                 before: left(c.from_string, 300), after: left(c.to_string, 300),
                 author: c.author, changelog_history_id: c.history_id}
                ORDER BY c.changed_at, c.history_id) AS changes,
           list(DISTINCT c.scope_field ORDER BY c.scope_field) AS fields
    FROM started s
    JOIN changes c ON c.issue_key = s.subject_key AND c.changed_at > s.started_at
    WHERE s.started_at IS NOT NULL
      AND list_contains(policy_list('$.drift.scope_changed_after_start.fields'), c.scope_field)
    GROUP BY ALL
)
SELECT
    md5('drift|scope_changed_after_start|issue|' || subject_key) AS finding_id,
    'drift'                                  AS kind,
    'scope_changed_after_start'              AS rule_id,
    'issue'                                  AS subject_type,
    subject_key,
    policy_text('$.drift.scope_changed_after_start.severity') AS severity,
    as_of()                                  AS detected_at,
    'Scope changed after work started: ' || subject_key || coalesce(' "' || title || '"', '')
        || ' — ' || replace(array_to_string(fields, ', '), '_', ' ')
        || ' changed after ' || strftime(started_at, '%Y-%m-%d') AS summary,
    to_json({
        subject: {type: 'issue', key: subject_key, title: title, url: web_url, project: project,
                  raw_id: raw_id},
        started_at: started_at,
        changes: changes
    })                                       AS evidence,
    project,
    web_url
FROM late
