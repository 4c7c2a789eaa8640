-- chain.work_items: one row per current Jira issue, typed. Custom fields are resolved
-- by name through raw /field objects (their ids differ per instance); statuses map to
-- their category through raw /status objects.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.work_items AS
WITH fields AS (
    SELECT payload->>'$.id' AS id, lower(payload->>'$.name') AS name
    FROM raw.current_objects('jira', 'field')
),
statuses AS (
    SELECT payload->>'$.id' AS id, payload->>'$.statusCategory.key' AS category
    FROM raw.current_objects('jira', 'status')
),
named AS (
    -- A name can map to several ids (project-scoped fields on Cloud, a second field
    -- of the same name on Server): every id is tried, the first one set wins.
    SELECT 'ac' AS role, id FROM fields WHERE name = lower(policy_text('$.jira.acceptance_criteria_field'))
    UNION ALL
    SELECT 'epic', id FROM fields WHERE name = lower(policy_text('$.jira.epic_link_field'))
    UNION ALL
    SELECT 'points', id FROM fields WHERE name = lower(policy_text('$.jira.story_points_field'))
),
issues AS (
    -- Each issue's JSON is parsed once into what is read of it: every `->>` on the whole
    -- payload would parse it again, each parse holding a vector of payloads in memory.
    SELECT raw_id, object_key,
           json_extract(payload, '$.fields') AS f,
           json_transform(payload, '{
               "id": "VARCHAR", "self": "VARCHAR",
               "fields": {
                   "project": {"key": "VARCHAR"},
                   "issuetype": {"name": "VARCHAR"},
                   "summary": "VARCHAR",
                   "status": {"id": "VARCHAR", "name": "VARCHAR",
                              "statusCategory": {"key": "VARCHAR"}},
                   "labels": "VARCHAR[]",
                   "components": [{"name": "VARCHAR"}],
                   "parent": {"key": "VARCHAR",
                              "fields": {"issuetype": {"name": "VARCHAR",
                                                       "hierarchyLevel": "VARCHAR"}}},
                   "created": "VARCHAR", "updated": "VARCHAR", "resolutiondate": "VARCHAR",
                   "assignee": {"accountId": "VARCHAR", "name": "VARCHAR"}
               }
           }') AS t
    FROM raw.current_objects('jira', 'issue')
),
custom AS (
    SELECT i.object_key,
           min(json_extract(i.f, '$.' || n.id)) FILTER (WHERE n.role = 'ac'
               AND json_type(json_extract(i.f, '$.' || n.id)) <> 'NULL') AS ac,
           min(json_extract_string(i.f, '$.' || n.id)) FILTER (WHERE n.role = 'epic')
               AS epic_link,
           min(TRY_CAST(json_extract_string(i.f, '$.' || n.id) AS DOUBLE))
               FILTER (WHERE n.role = 'points') AS points
    FROM issues i CROSS JOIN named n
    GROUP BY i.object_key
)
SELECT
    i.object_key                                             AS issue_key,
    i.t.id                                                   AS issue_id,
    i.t.fields.project.key                                   AS project_key,
    i.t.fields.issuetype.name                                AS issue_type,
    i.t.fields.summary                                       AS summary,
    i.t.fields.status.id                                     AS status_id,
    i.t.fields.status.name                                   AS status_name,
    coalesce(s.category, i.t.fields.status.statusCategory.key) AS status_category,
    coalesce(i.t.fields.labels, [])                          AS labels,
    coalesce(list_filter(list_transform(i.t.fields.components, lambda x: x.name),
                      lambda n: n IS NOT NULL), [])          AS components,
    i.t.fields.parent.key                                    AS parent_key,
    CASE
        WHEN c.epic_link IS NOT NULL THEN c.epic_link
        WHEN i.t.fields.parent.fields.issuetype.name = 'Epic'
          OR i.t.fields.parent.fields.issuetype.hierarchyLevel = '1'
            THEN i.t.fields.parent.key
    END                                                      AS epic_key,
    c.points                                                 AS story_points,
    nullif(trim(driftgate_text(c.ac::VARCHAR)), '')          AS acceptance_criteria,
    driftgate_text(json_extract(i.f, '$.description')::VARCHAR) AS description_text,
    json_extract(i.f, '$.description')                       AS description_raw,
    TRY_CAST(i.t.fields.created AS TIMESTAMPTZ)              AS created_at,
    TRY_CAST(i.t.fields.updated AS TIMESTAMPTZ)              AS updated_at,
    TRY_CAST(i.t.fields.resolutiondate AS TIMESTAMPTZ)       AS resolved_at,
    coalesce(i.t.fields.assignee.accountId, i.t.fields.assignee.name) AS assignee,
    -- the browse URL a manager clicks: the site of the issue's REST self link
    nullif(regexp_extract(i.t.self, '^(https?://.+?)/rest/api/', 1), '')
        || '/browse/' || i.object_key                        AS web_url,
    i.raw_id
FROM issues i
LEFT JOIN custom c USING (object_key)
LEFT JOIN statuses s ON s.id = i.t.fields.status.id
ORDER BY issue_key;
