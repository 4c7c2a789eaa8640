-- analysis.findings: every gap and drift finding at as_of, one row per (rule, subject):
-- the union of the rule files in sql/analysis/findings/ (view findings_rules; the file
-- name is the rule), less the drift rules the policy switched off, with the waiver
-- that covers it (policy entry or Jira label): a waived finding is kept, marked
-- waived, so the report can say who accepted it and until when.
CREATE SCHEMA IF NOT EXISTS analysis;

CREATE OR REPLACE TABLE analysis.findings AS
WITH waived AS (
    SELECT subject_key, target_id AS rule_id, waiver
    FROM analysis.waivers
    WHERE target = 'rule' AND effective
)
SELECT
    r.finding_id, r.kind, r.rule_id, r.subject_type, r.subject_key, r.severity,
    r.detected_at, r.summary, r.evidence,
    coalesce(w.waiver.active, false)                             AS waived,
    CASE WHEN w.waiver IS NOT NULL THEN to_json(w.waiver) END    AS waiver,
    r.project, r.web_url, as_of()                                AS as_of
FROM findings_rules r
LEFT JOIN waived w ON w.subject_key = r.subject_key AND w.rule_id = r.rule_id
WHERE r.kind = 'gap'
   OR coalesce(TRY_CAST(json_extract_string(getvariable('policy'),
                                            '$.drift.' || r.rule_id || '.enabled') AS BOOLEAN), true)
ORDER BY r.kind, r.rule_id, r.subject_type, r.subject_key;
