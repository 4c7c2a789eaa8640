-- chain.work_items: one row per current Jira issue, typed. Custom fields are resolved
-- by name through raw /field objects (their ids differ per instance); statuses map to
-- their category through raw /status objects.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.work_items AS
WITH fields AS (
    SELECT payload->>'$.id' AS id, lower(payload->>'$.name') AS name
    FROM raw.latest WHERE source = 'jira' AND object_type = 'field' AND NOT deleted
),
statuses AS (
    SELECT payload->>'$.id' AS id, payload->>'$.statusCategory.key' AS category
    FROM raw.latest WHERE source = 'jira' AND object_type = 'status' AND NOT deleted
),
ids AS (
    SELECT
        (SELECT min(id) FROM fields WHERE name = lower(getvariable('ac_field'))) AS ac_id,
        (SELECT min(id) FROM fields WHERE name = lower(getvariable('epic_link_field'))) AS epic_id,
        (SELECT min(id) FROM fields WHERE name = lower(getvariable('points_field'))) AS points_id
),
issues AS (
    SELECT raw_id, object_key, payload
    FROM raw.latest WHERE source = 'jira' AND object_type = 'issue' AND NOT deleted
)
SELECT
    i.object_key                                             AS issue_key,
    i.payload->>'$.id'                                       AS issue_id,
    i.payload->>'$.fields.project.key'                       AS project_key,
    i.payload->>'$.fields.issuetype.name'                    AS issue_type,
    i.payload->>'$.fields.summary'                           AS summary,
    i.payload->>'$.fields.status.id'                         AS status_id,
    i.payload->>'$.fields.status.name'                       AS status_name,
    coalesce(s.category, i.payload->>'$.fields.status.statusCategory.key') AS status_category,
    coalesce(CAST(json_extract(i.payload, '$.fields.labels') AS VARCHAR[]), [])  AS labels,
    coalesce(json_extract_string(i.payload, '$.fields.components[*].name'), []) AS components,
    i.payload->>'$.fields.parent.key'                        AS parent_key,
    CASE
        WHEN ids.epic_id IS NOT NULL
             AND json_extract_string(i.payload, '$.fields.' || ids.epic_id) IS NOT NULL
            THEN json_extract_string(i.payload, '$.fields.' || ids.epic_id)
        WHEN i.payload->>'$.fields.parent.fields.issuetype.name' = 'Epic'
          OR i.payload->>'$.fields.parent.fields.issuetype.hierarchyLevel' = '1'
            THEN i.payload->>'$.fields.parent.key'
    END                                                      AS epic_key,
    TRY_CAST(json_extract_string(i.payload, '$.fields.' || ids.points_id) AS DOUBLE)
                                                             AS story_points,
    nullif(trim(driftgate_text(json_extract(i.payload, '$.fields.' || ids.ac_id)::VARCHAR)), '')
                                                             AS acceptance_criteria,
    driftgate_text(json_extract(i.payload, '$.fields.description')::VARCHAR)
                                                             AS description_text,
    json_extract(i.payload, '$.fields.description')          AS description_raw,
    TRY_CAST(i.payload->>'$.fields.created' AS TIMESTAMPTZ)  AS created_at,
    TRY_CAST(i.payload->>'$.fields.updated' AS TIMESTAMPTZ)  AS updated_at,
    TRY_CAST(i.payload->>'$.fields.resolutiondate' AS TIMESTAMPTZ) AS resolved_at,
    coalesce(i.payload->>'$.fields.assignee.accountId',
             i.payload->>'$.fields.assignee.name')           AS assignee,
    i.raw_id
FROM issues i
CROSS JOIN ids
LEFT JOIN statuses s ON s.id = i.payload->>'$.fields.status.id'
ORDER BY issue_key;
