-- analysis.rework_events: work done again, one row per event, from the rule files in
-- sql/analysis/rework_events/ (view rework_events_rules; the file name is the kind):
-- reopened, bug_traced_to_story, churn, many_review_rounds, deployment_rework.
--   item_key   the work item the rework is charged to (the story a bug traces back to,
--              an issue the rewritten merge request names, the reopened issue itself)
--   effort     hours (docs/decisions.md says how each kind measures them); NULL for
--              deployment_rework, which feeds a rate
CREATE SCHEMA IF NOT EXISTS analysis;

CREATE OR REPLACE TABLE analysis.rework_events AS
SELECT event_id, kind, subject_type, subject_key, item_key, occurred_at, effort,
       'hours' AS effort_unit, story_points, evidence, team, web_url, as_of() AS as_of
FROM rework_events_rules
ORDER BY kind, subject_key, occurred_at, event_id;
