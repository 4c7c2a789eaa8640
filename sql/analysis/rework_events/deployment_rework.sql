-- rework deployment_rework (deployments): the DORA deployment rework rate's numerator. A
-- successful deployment, up to as_of, to one of rework.production_environments that
-- ships a merge request (its merge commit is the deployed sha) naming an issue of
-- rework.fix_issue_types created at most rework.deployment_window_days before the
-- deployment: unplanned work to fix a user-facing problem. subject_key is
-- <project_path>#<deployment iid>; item_key the story the fix traces back to (via
-- bug_traced_to_story links) or the fix issue itself. No effort: it is a rate.
WITH prod AS (
    SELECT d.*
    FROM chain.deployments d
    WHERE coalesce(d.finished_at, d.created_at) <= as_of()
      AND lower(coalesce(d.status, 'success')) = 'success'
      AND list_contains(lowered(policy_list('$.rework.production_environments')), lower(d.environment))
),
fixes AS (
    SELECT p.project_path, p.iid, p.deployment_id, coalesce(p.finished_at, p.created_at) AS deployed_at,
           p.environment, p.sha, p.raw_id, m.mr_key, m.web_url AS mr_url,
           w.issue_key AS fix_key, w.issue_type AS fix_type, w.created_at AS fix_created_at,
           w.web_url AS fix_url, w.project_key
    FROM prod p
    JOIN chain.merge_requests m ON m.project_id = p.project_id AND m.merge_commit_sha = p.sha
    JOIN chain.mr_mentions x ON x.mr_key = m.mr_key
    JOIN chain.work_items w ON w.issue_key = x.issue_key
    WHERE list_contains(lowered(policy_list('$.rework.fix_issue_types')), lower(w.issue_type))
      AND w.created_at <= coalesce(p.finished_at, p.created_at)
      AND coalesce(p.finished_at, p.created_at) - w.created_at
          <= to_days(TRY_CAST(policy_text('$.rework.deployment_window_days') AS INTEGER))
),
traced AS (
    SELECT l.issue_key AS fix_key, min(l.other_key) AS story_key
    FROM chain.issue_links l
    WHERE list_contains(lowered(policy_list('$.jira.bug_link_types')), lower(l.phrase))
    GROUP BY l.issue_key
)
SELECT
    md5('rework|deployment_rework|' || f.project_path || '#' || f.deployment_id) AS event_id,
    'deployment_rework'                        AS kind,
    'deployment'                               AS subject_type,
    f.project_path || '#' || any_value(f.iid)  AS subject_key,
    coalesce(min(t.story_key), min(f.fix_key)) AS item_key,
    any_value(f.deployed_at)                   AS occurred_at,
    CAST(NULL AS DOUBLE)                       AS effort,
    CAST(NULL AS DOUBLE)                       AS story_points,
    to_json({
        subject: {type: 'deployment', key: f.project_path || '#' || any_value(f.iid),
                  environment: any_value(f.environment), sha: any_value(f.sha),
                  raw_id: any_value(f.raw_id)},
        merge_requests: list(DISTINCT {key: f.mr_key, url: f.mr_url}),
        fixes: list(DISTINCT {key: f.fix_key, type: f.fix_type, url: f.fix_url,
                              created_at: f.fix_created_at})
    })                                         AS evidence,
    min(f.project_key)                         AS team,
    min(f.mr_url)                              AS web_url
FROM fixes f
LEFT JOIN traced t ON t.fix_key = f.fix_key
GROUP BY f.project_path, f.deployment_id
