-- analysis.waivers: accepted exceptions, one row per (subject, gate or rule):
--   policy      waivers.entries of the policy file (owner, reason, expiry)
--   jira_label  a label <waivers.jira_label_prefix><gate or rule id> on a Jira issue
--               (the owner is who added it, from the changelog); it does not expire
-- active: not expired at as_of (an expiry date counts through its whole day, UTC);
-- effective: the waiver gates and findings read when several name the same target.
CREATE SCHEMA IF NOT EXISTS analysis;

CREATE OR REPLACE TABLE analysis.waivers AS
WITH targets AS (
    SELECT 'gate' AS target, gate_id AS target_id FROM policy_gates
    UNION ALL
    SELECT 'rule', rule_id FROM policy_gap_rules
    UNION ALL
    SELECT 'rule', k FROM unnest(json_keys(getvariable('policy'), '$.drift')) AS d(k)
    WHERE json_type(getvariable('policy'), '$.drift.' || k) = 'OBJECT'
),
from_policy AS (
    SELECT subject_key,
           CASE WHEN gate_id IS NOT NULL THEN 'gate' ELSE 'rule' END AS target,
           coalesce(gate_id, rule_id) AS target_id,
           owner, reason, expires, 'policy' AS source
    FROM policy_waivers
),
labelled AS (
    SELECT s.subject_key, s.subject_type, l.label,
           substr(l.label, length(policy_text('$.waivers.jira_label_prefix')) + 1) AS target_id
    FROM analysis.subjects s, unnest(s.labels) AS l(label)
    WHERE s.subject_type = 'issue'
      AND policy_text('$.waivers.jira_label_prefix') IS NOT NULL
      AND starts_with(l.label, policy_text('$.waivers.jira_label_prefix'))
),
label_authors AS (
    -- who added the label: the first changelog entry whose new labels carry it
    SELECT f.issue_key, x.label, arg_min(f.author, {t: f.changed_at, k: f.history_id}) AS author
    FROM chain.field_changes f,
         unnest(string_split(coalesce(f.to_string, ''), ' ')) AS x(label)
    WHERE lower(f.field) = 'labels' AND f.changed_at <= as_of()
      AND NOT list_contains(string_split(coalesce(f.from_string, ''), ' '), x.label)
    GROUP BY f.issue_key, x.label
),
from_labels AS (
    SELECT l.subject_key, t.target, t.target_id,
           coalesce(a.author, 'unknown (label ' || l.label || ')') AS owner,
           'Jira label ' || l.label AS reason,
           CAST(NULL AS DATE) AS expires, 'jira_label' AS source
    FROM labelled l
    JOIN targets t USING (target_id)
    LEFT JOIN label_authors a ON a.issue_key = l.subject_key AND a.label = l.label
),
judged AS (
    SELECT w.*,
           w.expires IS NULL OR w.expires >= CAST(timezone('UTC', as_of()) AS DATE) AS active
    FROM (SELECT * FROM from_policy UNION ALL SELECT * FROM from_labels) w
)
SELECT *,
       -- the one that counts for its subject and gate or rule: an active one first, then
       -- the latest expiry (none = never), then by source
       row_number() OVER (PARTITION BY subject_key, target, target_id
                          ORDER BY active DESC, coalesce(expires, DATE '9999-12-31') DESC,
                                   source DESC) = 1 AS effective,
       {owner: owner, reason: reason, expires: expires, source: source, active: active}
                                                              AS waiver,
       as_of() AS as_of
FROM judged
ORDER BY subject_key, target, target_id, source;
