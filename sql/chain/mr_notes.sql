-- chain.mr_notes: every note of every merge request, system notes included, with its
-- kind read from GitLab's system-note wording (chain.mr_note_kinds, where each note is
-- read once): added_commits (a push; commits_added), approved, unapproved, comment (a
-- note a person wrote), other (every other system note).
-- Built by key (lib/incremental.KEYED): a night derives again the merge requests whose
-- objects were stored since, `rebuilds(mr_key)`.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.mr_notes AS
SELECT m.mr_key, n.* EXCLUDE (mr_object_key)
FROM chain.mr_note_kinds n
JOIN chain.merge_requests m ON m.object_key = n.mr_object_key
WHERE rebuilds(m.mr_key)
ORDER BY m.mr_key, n.created_at, n.note_id;
