-- Synthetic chain for benchmarks/analysis_synthetic.py: the organisation of database `src`
-- copied getvariable('copies') times (copy r = 0 is the original). Each copy has its own
-- keys: issue numbers, merge request iids, page ids, raw ids, changelog, note, link and
-- deployment ids are shifted by r times an offset above the source's largest; file paths
-- of copy r live under r<r>/ (the policy's globs start with **/, so they match alike) and
-- commit shas end in .<r>. Texts an analysis parses (descriptions, acceptance criteria,
-- changelog values) end in a blank line of their own: no recogniser reads it, but each
-- value is distinct, so parsing each distinct text once saves nothing a real
-- organisation of that size would not give. Teams, GitLab projects, Confluence spaces and timestamps
-- are shared: per-team and per-project groups grow with the copies, as in a larger
-- organisation. The analysis reads raw GitLab changes (churn) and files (spec drift),
-- and the current-object index and listings (ingest completeness): those are copied too.

SET VARIABLE ioff = (SELECT (10 ** ceil(log10(max(TRY_CAST(split_part(issue_key, '-', 2) AS BIGINT)) + 1)))::BIGINT
                     FROM src.chain.work_items);
SET VARIABLE moff = (SELECT (10 ** ceil(log10(max(iid) + 1)))::BIGINT FROM src.chain.merge_requests);
SET VARIABLE roff = (SELECT (10 ** ceil(log10(max(raw_id) + 1)))::BIGINT FROM src.raw.objects);
SET VARIABLE idoff = 10000000000;  -- page, changelog, note, link, deployment and object ids

-- `k` with its trailing number shifted for copy r (`sep` before the number); keys of
-- another shape get ~r appended.
CREATE OR REPLACE TEMP MACRO shifted(k, sep, r, off) AS
    CASE WHEN r = 0 OR k IS NULL THEN k
         WHEN regexp_matches(k, '^.*' || sep || '[0-9]+$')
         THEN regexp_extract(k, '^(.*' || sep || ')[0-9]+$', 1)
              || (CAST(regexp_extract(k, '([0-9]+)$', 1) AS BIGINT) + r * off)::VARCHAR
         ELSE k || '~' || r END;
CREATE OR REPLACE TEMP MACRO issue(k, r) AS shifted(k, '-', r, getvariable('ioff'));
CREATE OR REPLACE TEMP MACRO mr(k, r) AS shifted(k, '!', r, getvariable('moff'));
CREATE OR REPLACE TEMP MACRO id(k, r) AS
    CASE WHEN r = 0 OR k IS NULL THEN k
         ELSE coalesce(CAST(TRY_CAST(k AS BIGINT) + r * getvariable('idoff') AS VARCHAR), k || '~' || r) END;
CREATE OR REPLACE TEMP MACRO rid(k, r) AS k + r * getvariable('roff');
CREATE OR REPLACE TEMP MACRO path_of(p, r) AS CASE WHEN r = 0 OR p IS NULL THEN p ELSE 'r' || r || '/' || p END;
CREATE OR REPLACE TEMP MACRO sha_of(s, r) AS CASE WHEN r = 0 OR s IS NULL THEN s ELSE s || '.' || r END;
-- r in binary, as a last line of spaces and tabs: blank to every recogniser (and JSON
-- whitespace), a few characters long whatever r is.
CREATE OR REPLACE TEMP MACRO text_of(t, r) AS
    CASE WHEN r = 0 OR t IS NULL THEN t
         ELSE t || chr(10) || replace(replace(bin(r), '0', ' '), '1', chr(9)) END;

CREATE SCHEMA IF NOT EXISTS chain;

CREATE TABLE chain.work_items AS
SELECT w.* REPLACE (
    issue(w.issue_key, r) AS issue_key, id(w.issue_id, r) AS issue_id,
    issue(w.parent_key, r) AS parent_key, issue(w.epic_key, r) AS epic_key,
    text_of(w.acceptance_criteria, r) AS acceptance_criteria,
    text_of(w.description_text, r) AS description_text,
    CAST(text_of(CAST(w.description_raw AS VARCHAR), r) AS JSON) AS description_raw,
    rid(w.raw_id, r) AS raw_id)
FROM src.chain.work_items w, range(getvariable('copies')) c(r);

CREATE TABLE chain.field_changes AS
SELECT f.* REPLACE (
    issue(f.issue_key, r) AS issue_key, text_of(f.from_string, r) AS from_string,
    text_of(f.to_string, r) AS to_string, id(f.history_id, r) AS history_id,
    rid(f.raw_id, r) AS raw_id)
FROM src.chain.field_changes f, range(getvariable('copies')) c(r);

CREATE TABLE chain.status_transitions AS
SELECT s.* REPLACE (
    issue(s.issue_key, r) AS issue_key, id(s.history_id, r) AS history_id, rid(s.raw_id, r) AS raw_id)
FROM src.chain.status_transitions s, range(getvariable('copies')) c(r);

CREATE TABLE chain.issue_links AS
SELECT l.* REPLACE (
    issue(l.issue_key, r) AS issue_key, issue(l.other_key, r) AS other_key, rid(l.raw_id, r) AS raw_id)
FROM src.chain.issue_links l, range(getvariable('copies')) c(r);

CREATE TABLE chain.remote_links AS
SELECT l.* REPLACE (
    issue(l.issue_key, r) AS issue_key, id(l.link_id, r) AS link_id, id(l.page_id, r) AS page_id,
    rid(l.raw_id, r) AS raw_id)
FROM src.chain.remote_links l, range(getvariable('copies')) c(r);

CREATE TABLE chain.merge_requests AS
SELECT m.* REPLACE (
    mr(m.mr_key, r) AS mr_key, mr(m.object_key, r) AS object_key,
    m.mr_id + r * getvariable('idoff') AS mr_id, m.iid + r * getvariable('moff') AS iid,
    sha_of(m.merge_commit_sha, r) AS merge_commit_sha, rid(m.raw_id, r) AS raw_id)
FROM src.chain.merge_requests m, range(getvariable('copies')) c(r);

CREATE TABLE chain.mr_changes AS
SELECT c.* REPLACE (
    mr(c.mr_key, r) AS mr_key, path_of(c.old_path, r) AS old_path,
    path_of(c.new_path, r) AS new_path, rid(c.raw_id, r) AS raw_id)
FROM src.chain.mr_changes c, range(getvariable('copies')) c2(r);

CREATE TABLE chain.mr_mentions AS
SELECT x.* REPLACE (mr(x.mr_key, r) AS mr_key, issue(x.issue_key, r) AS issue_key)
FROM src.chain.mr_mentions x, range(getvariable('copies')) c(r);

CREATE TABLE chain.mr_notes AS
SELECT n.* REPLACE (
    mr(n.mr_key, r) AS mr_key, n.note_id + r * getvariable('idoff') AS note_id, rid(n.raw_id, r) AS raw_id)
FROM src.chain.mr_notes n, range(getvariable('copies')) c(r);

CREATE TABLE chain.mr_review_rounds AS
SELECT x.* REPLACE (mr(x.mr_key, r) AS mr_key)
FROM src.chain.mr_review_rounds x, range(getvariable('copies')) c(r);

CREATE TABLE chain.deployments AS
SELECT d.* REPLACE (
    d.deployment_id + r * getvariable('idoff') AS deployment_id, d.iid + r * getvariable('idoff') AS iid,
    sha_of(d.sha, r) AS sha, rid(d.raw_id, r) AS raw_id)
FROM src.chain.deployments d, range(getvariable('copies')) c(r);

CREATE TABLE chain.repository_files AS
SELECT f.* REPLACE (path_of(f.path, r) AS path, rid(f.raw_id, r) AS raw_id)
FROM src.chain.repository_files f, range(getvariable('copies')) c(r);

CREATE TABLE chain.pages AS
SELECT p.* REPLACE (
    id(p.page_id, r) AS page_id, list_transform(p.ancestor_ids, lambda a: id(a, r)) AS ancestor_ids,
    id(p.parent_id, r) AS parent_id, rid(p.raw_id, r) AS raw_id)
FROM src.chain.pages p, range(getvariable('copies')) c(r);

CREATE TABLE chain.page_versions AS
SELECT v.* REPLACE (id(v.page_id, r) AS page_id, rid(v.raw_id, r) AS raw_id)
FROM src.chain.page_versions v, range(getvariable('copies')) c(r);

CREATE TABLE chain.page_labels AS
SELECT l.* REPLACE (id(l.page_id, r) AS page_id)
FROM src.chain.page_labels l, range(getvariable('copies')) c(r);

CREATE TABLE chain.page_mentions AS
SELECT m.* REPLACE (id(m.page_id, r) AS page_id, issue(m.issue_key, r) AS issue_key)
FROM src.chain.page_mentions m, range(getvariable('copies')) c(r);

-- Raw: the GitLab changes and files with their payloads (paths moved like the chain's),
-- every current object in the index, and the listings scaled to the copies.
INSERT INTO raw.objects (raw_id, source, object_type, object_key, parent_key, content_hash,
                         payload, deleted, fetched_at, run_id)
SELECT rid(o.raw_id, r), o.source, o.object_type,
       CASE o.object_type WHEN 'mr_change' THEN mr(o.object_key, r)
            ELSE o.object_key || CASE WHEN r = 0 THEN '' ELSE '~' || r END END,
       o.parent_key, o.content_hash,
       CASE WHEN r = 0 OR o.object_type <> 'mr_change' THEN o.payload
            ELSE CAST(replace(replace(CAST(o.payload AS VARCHAR),
                                      '"old_path":"', '"old_path":"r' || r || '/'),
                              '"new_path":"', '"new_path":"r' || r || '/') AS JSON) END,
       o.deleted, o.fetched_at, o.run_id
FROM src.raw.current k
JOIN src.raw.objects o USING (raw_id)
CROSS JOIN range(getvariable('copies')) c(r)
WHERE o.source = 'gitlab' AND o.object_type IN ('mr_change', 'file');

INSERT INTO raw.current (source, object_type, object_key, raw_id, content_hash, deleted)
SELECT k.source, k.object_type,
       CASE WHEN r = 0 THEN k.object_key ELSE k.object_key || '~' || r END,
       rid(k.raw_id, r), k.content_hash, k.deleted
FROM src.raw.current k, range(getvariable('copies')) c(r)
WHERE NOT (k.source = 'gitlab' AND k.object_type IN ('mr_change', 'file'));

INSERT INTO raw.current (source, object_type, object_key, raw_id, content_hash, deleted)
SELECT source, object_type, object_key, raw_id, content_hash, deleted FROM raw.objects;

INSERT INTO raw.quarantine (source, object_type, object_key, reason, payload, fetched_at, run_id)
SELECT q.source, q.object_type, CASE WHEN r = 0 THEN q.object_key ELSE q.object_key || '~' || r END, q.reason, q.payload, q.fetched_at, q.run_id
FROM src.raw.quarantine q, range(getvariable('copies')) c(r);

INSERT INTO raw.listings (run_id, source, object_type, scope, full_listing, reported, listed,
                          listed_at, unit)
SELECT run_id, source, object_type, scope, full_listing,
       reported * getvariable('copies'), listed * getvariable('copies'), listed_at, unit
FROM src.raw.listings;

INSERT INTO raw.loads SELECT * FROM src.raw.loads;
