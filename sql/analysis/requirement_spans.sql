-- analysis.requirement_spans: when each requirement held for each subject, one row per
-- span [held_from, held_until) (held_until NULL: still held at as_of), with the evidence
-- that satisfied it; the union of the recognisers in sql/analysis/requirement_spans/
-- (view requirement_spans_rules; one file per requirement). Stored as the recognisers
-- give it, not sorted: at 100,000 issues sorting its 1.4 million spans took as long as
-- finding them (1.9 s of 3.6 s, every night), and every reader groups or joins by
-- subject and breaks ties explicitly (arg_min over held_from, then evidence); order
-- with ORDER BY when reading it.
CREATE SCHEMA IF NOT EXISTS analysis;

CREATE OR REPLACE TABLE analysis.requirement_spans AS
SELECT subject_type, subject_key, requirement, held_from, held_until, evidence,
       as_of() AS as_of
FROM requirement_spans_rules
WHERE held_from <= as_of();
