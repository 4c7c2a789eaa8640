-- drift prd_edited_after_stories (pages): a page the stories derive from (labels of
-- drift.prd_edited_after_stories.artifacts: PRD, product brief) linked to an epic
-- changed materially after the epic's first story was created: at least
-- min_changed_words words differ between the version the stories were cut from (the
-- last one before the first story; none if the page came later) and the latest
-- version up to as_of, approval-marker lines aside, so typo and whitespace edits are
-- not drift. Evidence: the versions compared, the sections that changed with a short
-- before/after excerpt, and the stories created before the change (with whether each
-- was updated since).
WITH labels AS (
    SELECT policy_text('$.confluence.labels.' || a) AS label
    FROM unnest(policy_list('$.drift.prd_edited_after_stories.artifacts')) AS t(a)
),
epic_pages AS (
    SELECT DISTINCT p.issue_key AS epic_key, p.page_id, p.title, p.web_url, p.raw_id
    FROM analysis.linked_pages p
    JOIN analysis.subjects e ON e.subject_type = 'issue' AND e.subject_key = p.issue_key AND e.is_epic
    WHERE p.label IN (SELECT label FROM labels)
),
stories AS (
    SELECT epic_key, subject_key, created_at, web_url, raw_id
    FROM analysis.subjects
    WHERE subject_type = 'issue' AND lower(issue_type) = 'story' AND epic_key IS NOT NULL
),
cuts AS (
    SELECT epic_key, min(created_at) AS cut_at FROM stories GROUP BY epic_key
),
versions AS (
    SELECT * FROM chain.page_versions WHERE edited_at <= as_of()
),
compared AS (
    SELECT ep.epic_key, ep.page_id, ep.title, ep.web_url, ep.raw_id, c.cut_at,
           (SELECT max(v.number) FROM versions v
             WHERE v.page_id = ep.page_id AND v.edited_at <= c.cut_at)          AS base_number,
           (SELECT max(v.number) FROM versions v WHERE v.page_id = ep.page_id)  AS last_number,
           (SELECT min(v.edited_at) FROM versions v
             WHERE v.page_id = ep.page_id AND v.edited_at > c.cut_at)           AS first_late_at
    FROM epic_pages ep
    JOIN cuts c USING (epic_key)
),
measured AS (
    SELECT c.*, b.body_text AS base_text, b.headings AS base_headings, b.edited_at AS base_at,
           l.body_text AS last_text, l.headings AS last_headings, l.edited_at AS last_at,
           driftgate_changed_words(b.body_text, l.body_text,
                                   split_part(policy_text('$.confluence.approved_marker'), ':', 1) || ':')
               AS changed_words
    FROM compared c
    LEFT JOIN versions b ON b.page_id = c.page_id AND b.number = c.base_number
    JOIN versions l ON l.page_id = c.page_id AND l.number = c.last_number
    WHERE c.first_late_at IS NOT NULL
),
material AS (
    SELECT * FROM measured
    WHERE changed_words >= TRY_CAST(policy_text('$.drift.prd_edited_after_stories.min_changed_words') AS INTEGER)
),
per_page AS (
    SELECT page_id,
           arg_max(m, {w: m.changed_words, e: m.epic_key})   AS widest,
           list(DISTINCT epic_key ORDER BY epic_key)          AS epics,
           min(cut_at)                                        AS cut_at,
           min(first_late_at)                                 AS first_late_at
    FROM material m
    GROUP BY page_id
),
affected AS (
    SELECT p.page_id,
           list({key: s.subject_key, url: s.web_url, updated_since: w.updated_at > p.first_late_at}
                ORDER BY s.subject_key) AS stories
    FROM (SELECT *, unnest(epics) AS epic_key FROM per_page) p
    JOIN stories s ON s.epic_key = p.epic_key AND s.created_at < p.first_late_at
    JOIN chain.work_items w ON w.issue_key = s.subject_key
    GROUP BY p.page_id
)
SELECT
    md5('drift|prd_edited_after_stories|page|' || p.page_id) AS finding_id,
    'drift' AS kind, 'prd_edited_after_stories' AS rule_id, 'page' AS subject_type,
    p.page_id AS subject_key,
    policy_text('$.drift.prd_edited_after_stories.severity') AS severity,
    as_of() AS detected_at,
    'Requirements changed after stories were cut: "' || p.widest.title || '" (epic '
        || array_to_string(p.epics, ', ') || ') — ' || p.widest.changed_words
        || ' words changed in version ' || p.widest.last_number || ' since version '
        || coalesce(p.widest.base_number::VARCHAR, '(none)') AS summary,
    to_json({
        subject: {type: 'page', key: p.page_id, title: p.widest.title, url: p.widest.web_url,
                  raw_id: p.widest.raw_id},
        epics: p.epics,
        stories_cut_at: p.cut_at,
        compared: {from_version: p.widest.base_number, from_at: p.widest.base_at,
                   to_version: p.widest.last_number, to_at: p.widest.last_at},
        first_late_edit_at: p.first_late_at,
        changed_words: p.widest.changed_words,
        sections: driftgate_changed_sections(
            p.widest.base_text, p.widest.last_text,
            list_concat(coalesce(p.widest.base_headings, []), coalesce(p.widest.last_headings, [])),
            split_part(policy_text('$.confluence.approved_marker'), ':', 1) || ':'),
        affected_stories: coalesce(a.stories, [])
    }) AS evidence,
    split_part(p.epics[1], '-', 1) AS project,
    p.widest.web_url AS web_url
FROM per_page p
LEFT JOIN affected a USING (page_id)
