-- Macros every chain and analysis file may use (run before each build, per connection).
-- The policy arrives whole as the JSON variable 'policy'; as_of as the variable 'as_of'.
CREATE OR REPLACE TEMP MACRO policy_text(path) AS getvariable('policy')->>path;
CREATE OR REPLACE TEMP MACRO policy_list(path) AS
    coalesce(from_json(getvariable('policy')->path, '["VARCHAR"]'), []::VARCHAR[]);
CREATE OR REPLACE TEMP MACRO as_of() AS getvariable('as_of')::TIMESTAMPTZ;
-- Whether this build derives the rows of key `k`: always, but in a chain table built by
-- key (lib/incremental.KEYED), which narrows it to the keys whose objects changed.
CREATE OR REPLACE TEMP MACRO rebuilds(k) AS true;
-- "The same minute counts as before": gates compare moments at minute precision.
CREATE OR REPLACE TEMP MACRO same_minute_or_before(a, b) AS
    date_trunc('minute', a) <= date_trunc('minute', b);
-- Whether a subject (analysis.subjects) is in the scope of a gate or gap rule's
-- applies_to (policy_gates / policy_gap_rules): every non-empty condition holds, and
-- any_of needs at least one of its marks. Names compare case-insensitively.
CREATE OR REPLACE TEMP MACRO lowered(xs) AS list_transform(coalesce(xs, []), lambda x: lower(x));
CREATE OR REPLACE TEMP MACRO selector_matches(r, s) AS
    (len(r.issue_types) = 0 OR list_contains(lowered(r.issue_types), lower(s.issue_type)))
    AND (len(r.projects) = 0 OR list_contains(lowered(r.projects), lower(s.project)))
    AND (len(r.target_branches) = 0 OR list_contains(r.target_branches, s.target_branch))
    AND (len(r.states) = 0 OR list_contains(r.states, s.mr_state))
    AND (len(r.any_labels) + len(r.any_components) + len(r.any_linked_issue_labels) = 0
         OR list_has_any(lowered(r.any_labels), lowered(s.labels))
         OR list_has_any(lowered(r.any_components), lowered(s.components))
         OR list_has_any(lowered(r.any_linked_issue_labels), lowered(s.linked_issue_labels)));
-- Headings compared as a reader would: case, surrounding spaces and a trailing colon ignored.
CREATE OR REPLACE TEMP MACRO heading_keys(xs) AS
    list_transform(coalesce(xs, []), lambda h: lower(trim(rtrim(trim(h), ':'))));
-- A cheap pre-test before the Python section recognisers: can `value` hold a heading
-- `heading` at all (its words, any spacing, any case)? Headings with other characters
-- than letters, digits and spaces always go to the recogniser.
CREATE OR REPLACE TEMP MACRO may_hold_heading(value, heading) AS
    value IS NOT NULL AND (
        NOT regexp_matches(heading, '^[A-Za-z0-9 ]+$')
        OR regexp_matches(value, '(?i)' || regexp_replace(trim(heading), ' +', '\\s+', 'g')));
-- driftgate_glob_match behind a cheap pre-test: a path one of `globs` matches holds every
-- plain-text piece of that glob (lib/gitlab_text.glob_pieces), so most paths are answered
-- in SQL, without a Python call. CASE, not AND: AND may still call Python on every row.
CREATE OR REPLACE TEMP MACRO may_match_globs(path, globs) AS
    path IS NOT NULL AND coalesce(list_bool_or(list_transform(
        driftgate_glob_pieces(globs),
        lambda pieces: len(list_filter(pieces, lambda piece: NOT contains(path, piece))) = 0)), false);
CREATE OR REPLACE TEMP MACRO glob_matches(path, globs) AS
    CASE WHEN may_match_globs(path, globs) THEN driftgate_glob_match(path, globs) ELSE false END;
-- A Jira issue's changelog histories, typed, from one parse of its payload: reading the
-- items with `->>` / json_each parses the payload and each history again and holds
-- vectors of whole payloads, which does not fit a capped memory at 100,000 issues.
CREATE OR REPLACE TEMP MACRO jira_changelog(payload) AS
    json_transform(payload, '{"changelog": {"histories": [{
        "id": "VARCHAR", "created": "VARCHAR",
        "author": {"accountId": "VARCHAR", "name": "VARCHAR"},
        "items": [{"field": "VARCHAR", "fieldId": "VARCHAR", "fieldtype": "VARCHAR",
                   "from": "VARCHAR", "fromString": "VARCHAR",
                   "to": "VARCHAR", "toString": "VARCHAR"}]}]}}').changelog.histories;

-- A Confluence user as the API gives it (an object) or as captured datasets may hold it
-- (a plain name): shown name, and stable id.
CREATE OR REPLACE TEMP MACRO confluence_user_name(u) AS
    CASE WHEN json_type(u) = 'VARCHAR' THEN u->>'$'
         ELSE coalesce(u->>'$.displayName', u->>'$.publicName', u->>'$.username',
                       u->>'$.accountId') END;
CREATE OR REPLACE TEMP MACRO confluence_user_id(u) AS
    CASE WHEN json_type(u) = 'VARCHAR' THEN u->>'$'
         ELSE coalesce(u->>'$.accountId', u->>'$.userKey', u->>'$.username') END;
