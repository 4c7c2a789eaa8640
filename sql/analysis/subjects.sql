-- analysis.subjects: what gates and gap rules can apply to, as it stood at as_of: one
-- row per Jira issue created by then and per merge request opened by then.
--   status_category  the issue's category at as_of (its last transition up to then, else
--                    the status it was created in), never today's if that came later
--   started_at       the first move into drift.work_started_category (or the creation,
--                    when created there) up to as_of; first_done_at / last_done_at the
--                    first and last moves into the done category up to as_of
--   mr_state         opened | merged | closed at as_of, from merged_at / closed_at
--   linked_issues    merge requests: the existing issues they name (chain.mr_mentions)
--   epics            the epic(s) above the subject: an epic is its own; a merge request
--                    takes those of its linked issues
--   scope_issues     the issues whose linked pages count for the subject: itself (or its
--                    linked issues) and its epics
-- Labels, components and types are today's: Jira keeps no history of them that the
-- analysis reads (a documented limit).
CREATE SCHEMA IF NOT EXISTS analysis;

CREATE OR REPLACE TABLE analysis.subjects AS
WITH items AS (
    SELECT * FROM chain.work_items WHERE created_at <= as_of()
),
epic_keys AS (
    SELECT DISTINCT epic_key FROM items WHERE epic_key IS NOT NULL
),
status_then AS (
    SELECT issue_key,
           arg_max(to_category, {t: changed_at, k: history_id}) FILTER (WHERE changed_at <= as_of()) AS last_category,
           arg_max(to_status, {t: changed_at, k: history_id}) FILTER (WHERE changed_at <= as_of())   AS last_status,
           arg_min(from_category, {t: changed_at, k: history_id})                                   AS first_category,
           arg_min(from_status, {t: changed_at, k: history_id})                                    AS first_status,
           min(changed_at) FILTER (WHERE changed_at <= as_of()
                                     AND to_category = policy_text('$.drift.work_started_category'))
                                                                                   AS entered_work,
           min(changed_at) FILTER (WHERE changed_at <= as_of() AND to_category = 'done')
                                                                                   AS first_done_at,
           max(changed_at) FILTER (WHERE changed_at <= as_of() AND to_category = 'done')
                                                                                   AS last_done_at
    FROM chain.status_transitions
    GROUP BY issue_key
),
issues AS (
    SELECT
        'issue'                                                   AS subject_type,
        i.issue_key                                               AS subject_key,
        i.project_key                                             AS project,
        i.issue_type,
        i.issue_type = 'Epic' OR i.issue_key IN (SELECT epic_key FROM epic_keys) AS is_epic,
        i.summary                                                 AS title,
        i.labels,
        i.components,
        coalesce(s.last_category, s.first_category, i.status_category) AS status_category,
        coalesce(s.last_status, s.first_status, i.status_name)    AS status_name,
        coalesce(s.first_category, i.status_category)             AS created_in_category,
        CASE WHEN coalesce(s.first_category, i.status_category)
                  = policy_text('$.drift.work_started_category') THEN i.created_at
             ELSE s.entered_work END                              AS started_at,
        s.first_done_at,
        s.last_done_at,
        CAST(NULL AS VARCHAR)                                     AS mr_state,
        CAST(NULL AS VARCHAR)                                     AS target_branch,
        []::VARCHAR[]                                             AS linked_issues,
        []::VARCHAR[]                                             AS linked_issue_labels,
        i.epic_key,
        i.created_at,
        CAST(NULL AS TIMESTAMPTZ)                                 AS merged_at,
        i.web_url,
        i.raw_id
    FROM items i
    LEFT JOIN status_then s USING (issue_key)
),
issues_scoped AS (
    SELECT *,
           CASE WHEN is_epic THEN [subject_key]
                WHEN epic_key IS NOT NULL AND epic_key IN (SELECT issue_key FROM items)
                    THEN [epic_key]
                ELSE []::VARCHAR[] END                            AS epics
    FROM issues
),
mr_links AS (
    SELECT m.mr_key,
           list(DISTINCT i.subject_key ORDER BY i.subject_key)    AS linked_issues,
           list_sort(list_distinct(flatten(list(i.labels))))      AS linked_issue_labels,
           list_sort(list_distinct(flatten(list(i.epics))))       AS epics
    FROM chain.mr_mentions m
    JOIN issues_scoped i ON i.subject_key = m.issue_key
    GROUP BY m.mr_key
),
mrs AS (
    SELECT
        'merge_request'                                           AS subject_type,
        m.mr_key                                                  AS subject_key,
        m.project_path                                            AS project,
        CAST(NULL AS VARCHAR)                                     AS issue_type,
        false                                                     AS is_epic,
        m.title,
        m.labels,
        []::VARCHAR[]                                             AS components,
        CAST(NULL AS VARCHAR)                                     AS status_category,
        CAST(NULL AS VARCHAR)                                     AS status_name,
        CAST(NULL AS VARCHAR)                                     AS created_in_category,
        CAST(NULL AS TIMESTAMPTZ)                                 AS started_at,
        CAST(NULL AS TIMESTAMPTZ)                                 AS first_done_at,
        CAST(NULL AS TIMESTAMPTZ)                                 AS last_done_at,
        CASE WHEN m.merged_at <= as_of() THEN 'merged'
             WHEN m.closed_at <= as_of() THEN 'closed'
             WHEN m.merged_at IS NULL AND m.closed_at IS NULL AND m.state IN ('merged', 'closed')
                 THEN m.state           -- ended at an unknown moment: today's state
             ELSE 'opened' END                                    AS mr_state,
        m.target_branch,
        coalesce(l.linked_issues, [])                             AS linked_issues,
        coalesce(l.linked_issue_labels, [])                       AS linked_issue_labels,
        CAST(NULL AS VARCHAR)                                     AS epic_key,
        m.created_at,
        CASE WHEN m.merged_at <= as_of() THEN m.merged_at END     AS merged_at,
        m.web_url,
        m.raw_id,
        coalesce(l.epics, [])                                     AS epics
    FROM chain.merge_requests m
    LEFT JOIN mr_links l USING (mr_key)
    WHERE m.created_at <= as_of()
)
SELECT *, list_distinct([subject_key] || epics) AS scope_issues, as_of() AS as_of
FROM issues_scoped
UNION ALL BY NAME
SELECT *, list_distinct(linked_issues || epics) AS scope_issues, as_of() AS as_of
FROM mrs
ORDER BY subject_type, subject_key;
