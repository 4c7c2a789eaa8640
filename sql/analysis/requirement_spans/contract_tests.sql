-- requirement contract_tests (merge requests): held from the moment the merge request
-- was opened when its changes touch ingest.contract_test_globs (GitLab gives the final
-- diff, not when each file joined it: a documented limit).
SELECT
    'merge_request'                 AS subject_type,
    m.mr_key                        AS subject_key,
    'contract_tests'                AS requirement,
    m.created_at                    AS held_from,
    CAST(NULL AS TIMESTAMPTZ)       AS held_until,
    to_json({
        source: 'gitlab', object: 'merge_request', key: m.mr_key, url: m.web_url,
        found_in: 'changes matching ' || array_to_string(policy_list('$.ingest.contract_test_globs'), ', '),
        paths: list(DISTINCT c.new_path ORDER BY c.new_path), raw_id: m.raw_id
    })                              AS evidence
FROM chain.merge_requests m
JOIN chain.mr_changes c USING (mr_key)
WHERE m.created_at <= as_of()
  AND NOT c.deleted_file
  AND glob_matches(c.new_path, policy_list('$.ingest.contract_test_globs'))
GROUP BY m.mr_key, m.created_at, m.web_url, m.raw_id
