-- chain.mr_note_kinds: every stored merge-request note, system notes included, typed and
-- with its kind read from GitLab's system-note wording, under its merge request's object
-- key. Each row comes from one note, so the table is built note by note
-- (lib/incremental.py); chain.mr_notes gives the rows their merge request's key. Kinds:
--   added_commits  "added 3 commits" (a push to the source branch; commits_added = 3)
--   approved       "approved this merge request"
--   unapproved     "unapproved this merge request"
--   comment        any note a person wrote (system = false)
--   other          every other system note (assigned, mentioned, merged, ...)
--
-- Raw notes come in two shapes, each as the API answered it: REST notes (`id`,
-- `created_at`, `type`) and GraphQL `Note` nodes (lib/sources/gitlab_graphql.py):
-- `id` is `gid://gitlab/<class>/<number>`, the number being the REST id and the class
-- the REST `type` ("Note" is REST's null), and `createdAt` the time to the second.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.mr_note_kinds AS
WITH parsed AS (
    -- one parse of each payload (see work_items.sql)
    SELECT parent_key, raw_id,
           json_transform(payload, '{
               "id": "VARCHAR", "system": "VARCHAR", "body": "VARCHAR", "type": "VARCHAR",
               "created_at": "VARCHAR", "createdAt": "VARCHAR",
               "author": {"username": "VARCHAR"}
           }') AS t
    FROM raw.current_objects('gitlab', 'mr_note')
),
notes AS (
    SELECT parent_key, raw_id, t,
           coalesce(TRY_CAST(t.system AS BOOLEAN), false) AS system,
           coalesce(t.body, '') AS body,
           regexp_extract(t.id, '^gid://gitlab/([A-Za-z:]+)/([0-9]+)$',
                          ['class', 'number']) AS gid
    FROM parsed
)
SELECT
    n.parent_key                                             AS mr_object_key,
    coalesce(TRY_CAST(n.t.id AS BIGINT),
             TRY_CAST(nullif(n.gid.number, '') AS BIGINT))   AS note_id,
    TRY_CAST(coalesce(n.t.created_at, n.t.createdAt) AS TIMESTAMPTZ) AS created_at,
    n.t.author.username                                      AS author,
    n.system,
    n.body,
    CASE
        WHEN NOT n.system THEN 'comment'
        WHEN regexp_matches(n.body, '^added [0-9]+ (new )?commits?\b') THEN 'added_commits'
        WHEN starts_with(n.body, 'approved this merge request') THEN 'approved'
        WHEN starts_with(n.body, 'unapproved this merge request') THEN 'unapproved'
        ELSE 'other'
    END                                                      AS kind,
    CASE WHEN n.system
         THEN TRY_CAST(nullif(regexp_extract(n.body, '^added ([0-9]+) (new )?commits?\b', 1), '')
                       AS INTEGER)
    END                                                      AS commits_added,
    CASE WHEN coalesce(n.gid.class, '') = '' THEN n.t.type
         ELSE nullif(n.gid.class, 'Note') END                AS note_type,
    n.raw_id
FROM notes n
ORDER BY mr_object_key, created_at, note_id;
