-- drift docs_stale_after_change (pages): a test plan or runbook (labels of
-- drift.docs_stale_after_change.artifacts) linked to an epic whose PRD/brief (the
-- prd_edited_after_stories artifacts) changed materially after the document's own last
-- version (min_changed_words of prd_edited_after_stories between the PRD version the
-- document was last written against and the latest one, up to as_of). Evidence: both
-- pages, their versions and the size of the change.
WITH doc_labels AS (
    SELECT policy_text('$.confluence.labels.' || a) AS label
    FROM unnest(policy_list('$.drift.docs_stale_after_change.artifacts')) AS t(a)
),
source_labels AS (
    SELECT policy_text('$.confluence.labels.' || a) AS label
    FROM unnest(policy_list('$.drift.prd_edited_after_stories.artifacts')) AS t(a)
),
versions AS (
    SELECT * FROM chain.page_versions WHERE edited_at <= as_of()
),
last_versions AS (
    SELECT page_id, max(number) AS number, max(edited_at) AS edited_at FROM versions GROUP BY page_id
),
pairs AS (
    SELECT DISTINCT d.issue_key AS epic_key, d.page_id AS doc_id, d.title AS doc_title,
           d.web_url AS doc_url, d.raw_id AS doc_raw_id, d.label AS doc_label,
           s.page_id AS source_id, s.title AS source_title, s.web_url AS source_url
    FROM analysis.linked_pages d
    JOIN analysis.linked_pages s ON s.issue_key = d.issue_key AND s.page_id <> d.page_id
    JOIN analysis.subjects e ON e.subject_type = 'issue' AND e.subject_key = d.issue_key AND e.is_epic
    WHERE d.label IN (SELECT label FROM doc_labels) AND s.label IN (SELECT label FROM source_labels)
),
measured AS (
    SELECT p.*, dl.number AS doc_version, dl.edited_at AS doc_last_at,
           sl.number AS source_version, sl.edited_at AS source_last_at,
           (SELECT max(v.number) FROM versions v
             WHERE v.page_id = p.source_id AND v.edited_at <= dl.edited_at) AS source_base_version
    FROM pairs p
    JOIN last_versions dl ON dl.page_id = p.doc_id
    JOIN last_versions sl ON sl.page_id = p.source_id
    WHERE sl.edited_at > dl.edited_at
),
compared AS MATERIALIZED (
    -- each pair of source versions diffed once, however many documents it dates
    SELECT m.source_id, m.source_base_version, m.source_version,
           driftgate_changed_words(b.body_text, l.body_text,
                                   split_part(policy_text('$.confluence.approved_marker'), ':', 1) || ':')
               AS changed_words
    FROM (SELECT DISTINCT source_id, source_base_version, source_version FROM measured) m
    LEFT JOIN versions b ON b.page_id = m.source_id AND b.number = m.source_base_version
    JOIN versions l ON l.page_id = m.source_id AND l.number = m.source_version
),
stale AS (
    SELECT m.*, c.changed_words
    FROM measured m
    JOIN compared c ON c.source_id = m.source_id AND c.source_version = m.source_version
     AND c.source_base_version IS NOT DISTINCT FROM m.source_base_version
)
SELECT
    md5('drift|docs_stale_after_change|page|' || doc_id) AS finding_id,
    'drift' AS kind, 'docs_stale_after_change' AS rule_id, 'page' AS subject_type,
    doc_id AS subject_key,
    policy_text('$.drift.docs_stale_after_change.severity') AS severity,
    as_of() AS detected_at,
    'Stale ' || any_value(doc_label) || ': "' || any_value(doc_title) || '" last changed '
        || strftime(any_value(doc_last_at), '%Y-%m-%d') || ', before ' || count(*)
        || ' material change(s) to "' || arg_max(source_title, changed_words) || '"' AS summary,
    to_json({
        subject: {type: 'page', key: doc_id, title: any_value(doc_title), url: any_value(doc_url),
                  raw_id: any_value(doc_raw_id)},
        epics: list(DISTINCT epic_key ORDER BY epic_key),
        document: {version: any_value(doc_version), "at": any_value(doc_last_at)},
        changed_sources: list(DISTINCT {key: source_id, title: source_title, url: source_url,
                                        from_version: source_base_version, to_version: source_version,
                                        changed_at: source_last_at, changed_words: changed_words})
    }) AS evidence,
    split_part(min(epic_key), '-', 1) AS project,
    any_value(doc_url) AS web_url
FROM stale
WHERE changed_words >= TRY_CAST(policy_text('$.drift.prd_edited_after_stories.min_changed_words') AS INTEGER)
GROUP BY doc_id
