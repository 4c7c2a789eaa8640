-- analysis.rework_share: rework as a share of engineering capacity, per team (the Jira
-- project) and month (UTC), up to as_of. The effort measure is elapsed hours:
--   delivered_hours  per issue first done in the month (epics and bugs counted as
--                    rework aside): hours from its start (first move into progress or
--                    done, or its creation when it was created there or never started)
--                    to that first done
--   rework_hours     the effort of the month's rework events (analysis.rework_events)
--   share            rework_hours / (rework_hours + delivered_hours)
-- Deployment rework rate (DORA): production deployments of the month that shipped a fix
-- over all production deployments. small_sample: fewer delivered items than
-- rework.small_sample.
CREATE SCHEMA IF NOT EXISTS analysis;

CREATE OR REPLACE TABLE analysis.rework_share AS
WITH issues AS (
    SELECT subject_key, project AS team, created_at, first_done_at AS done_at,
           coalesce(least(started_at, first_done_at), created_at) AS began_at
    FROM analysis.subjects
    WHERE subject_type = 'issue' AND NOT is_epic
),
rework_bugs AS (
    SELECT DISTINCT subject_key FROM analysis.rework_events WHERE kind = 'bug_traced_to_story'
),
delivered AS (
    SELECT team, date_trunc('month', timezone('UTC', done_at)) AS month,
           count(*) AS delivered_items,
           sum(date_diff('second', began_at, done_at) / 3600.0) AS delivered_hours
    FROM issues
    WHERE done_at IS NOT NULL AND subject_key NOT IN (SELECT subject_key FROM rework_bugs)
    GROUP BY ALL
),
rework AS (
    SELECT team, date_trunc('month', timezone('UTC', occurred_at)) AS month,
           count(*) AS rework_events,
           sum(coalesce(effort, 0)) AS rework_hours,
           count(*) FILTER (WHERE kind = 'reopened') AS reopened,
           count(*) FILTER (WHERE kind = 'bug_traced_to_story') AS bugs_traced,
           count(*) FILTER (WHERE kind = 'churn') AS churn,
           count(*) FILTER (WHERE kind = 'many_review_rounds') AS many_review_rounds
    FROM analysis.rework_events
    WHERE kind <> 'deployment_rework'
    GROUP BY ALL
),
deployments AS (
    SELECT coalesce(min(split_part(x.issue_key, '-', 1)), d.project_path) AS team,
           date_trunc('month', timezone('UTC', coalesce(d.finished_at, d.created_at))) AS month,
           d.project_path || '#' || d.iid AS deployment_key
    FROM chain.deployments d
    LEFT JOIN chain.merge_requests m ON m.project_id = d.project_id AND m.merge_commit_sha = d.sha
    LEFT JOIN chain.mr_mentions x ON x.mr_key = m.mr_key
    WHERE coalesce(d.finished_at, d.created_at) <= as_of()
      AND lower(coalesce(d.status, 'success')) = 'success'
      AND list_contains(lowered(policy_list('$.rework.production_environments')), lower(d.environment))
    GROUP BY d.project_path, d.iid, d.finished_at, d.created_at
),
deploy_rate AS (
    SELECT d.team, d.month, count(*) AS production_deployments,
           count(*) FILTER (WHERE d.deployment_key IN (
               SELECT subject_key FROM analysis.rework_events WHERE kind = 'deployment_rework'))
               AS rework_deployments
    FROM deployments d
    GROUP BY ALL
),
keys AS (
    SELECT team, month FROM delivered UNION SELECT team, month FROM rework
    UNION SELECT team, month FROM deploy_rate
)
SELECT
    k.team,
    CAST(k.month AS DATE)                                        AS month,
    coalesce(d.delivered_items, 0)                               AS delivered_items,
    round(coalesce(d.delivered_hours, 0), 1)                     AS delivered_hours,
    coalesce(r.rework_events, 0)                                 AS rework_events,
    round(coalesce(r.rework_hours, 0), 1)                        AS rework_hours,
    round(coalesce(r.rework_hours, 0)
          / nullif(coalesce(r.rework_hours, 0) + coalesce(d.delivered_hours, 0), 0), 4) AS share,
    'elapsed hours'                                              AS effort_measure,
    coalesce(r.reopened, 0) AS reopened, coalesce(r.bugs_traced, 0) AS bugs_traced,
    coalesce(r.churn, 0) AS churn, coalesce(r.many_review_rounds, 0) AS many_review_rounds,
    coalesce(p.production_deployments, 0)                        AS production_deployments,
    coalesce(p.rework_deployments, 0)                            AS rework_deployments,
    round(p.rework_deployments / nullif(p.production_deployments, 0), 4) AS deployment_rework_rate,
    coalesce(d.delivered_items, 0)
        < TRY_CAST(policy_text('$.rework.small_sample') AS INTEGER) AS small_sample,
    as_of()                                                      AS as_of
FROM keys k
LEFT JOIN delivered d USING (team, month)
LEFT JOIN rework r USING (team, month)
LEFT JOIN deploy_rate p USING (team, month)
ORDER BY k.team, k.month;
