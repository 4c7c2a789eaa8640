-- analysis.requirement_spans: when each requirement held for each subject, one row per
-- span [held_from, held_until) (held_until NULL: still held at as_of), with the evidence
-- that satisfied it; the union of the recognisers in sql/analysis/requirement_spans/
-- (view requirement_spans_rules; one file per requirement). The union is stored before
-- it is sorted: sorted in the same query, the sort held its memory beside every
-- recogniser's (out of memory at 8 GB with 1,000,000 issues); alone it spills to disk.
-- JSON sorts as its text: ordering by `evidence` is ordering by `evidence::VARCHAR`
-- without a second copy of every evidence in the sort.
CREATE SCHEMA IF NOT EXISTS analysis;

CREATE OR REPLACE TEMP TABLE requirement_spans_unsorted AS
SELECT subject_type, subject_key, requirement, held_from, held_until, evidence,
       as_of() AS as_of
FROM requirement_spans_rules
WHERE held_from <= as_of();

CREATE OR REPLACE TABLE analysis.requirement_spans AS
SELECT * FROM requirement_spans_unsorted
ORDER BY subject_type, subject_key, requirement, held_from, evidence;

DROP TABLE requirement_spans_unsorted;
