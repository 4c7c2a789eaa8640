-- Raw layer: every API object as received, append-only. A changed object adds a row,
-- an unchanged one does not; a deleted one gets a tombstone row (deleted = true).
-- Payloads are stored with ZSTD: left to choose, DuckDB compresses these large JSON
-- texts with DICT_FSST, about five times larger and three times slower to write (a
-- day's 5,000 changed Jira issues, 48 MB of JSON: 1.7 s against 0.1 s at the commit).
-- A database from before is converted once (lib/rawstore.py, ensure_raw_schema).
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SEQUENCE IF NOT EXISTS raw.raw_id_seq;

CREATE TABLE IF NOT EXISTS raw.objects (
    raw_id       BIGINT PRIMARY KEY DEFAULT nextval('raw.raw_id_seq'),
    source       VARCHAR NOT NULL,     -- jira | gitlab | confluence
    object_type  VARCHAR NOT NULL,     -- issue, remotelink, merge_request, page, ...
    object_key   VARCHAR NOT NULL,     -- natural key (issue key, <project_id>!<iid>, page id...)
    parent_key   VARCHAR,              -- the object it was fetched under, if any
    content_hash VARCHAR NOT NULL,     -- sha256 of the canonical JSON payload
    payload      JSON USING COMPRESSION ZSTD,  -- NULL on a tombstone
    deleted      BOOLEAN NOT NULL DEFAULT false,
    fetched_at   TIMESTAMPTZ NOT NULL,
    run_id       VARCHAR NOT NULL
);

-- Index of the latest row of every object, kept in step with raw.objects so that
-- "has this object changed?" is a key lookup, not a scan of the history.
CREATE TABLE IF NOT EXISTS raw.current (
    source       VARCHAR NOT NULL,
    object_type  VARCHAR NOT NULL,
    object_key   VARCHAR NOT NULL,
    raw_id       BIGINT NOT NULL,
    content_hash VARCHAR NOT NULL,
    deleted      BOOLEAN NOT NULL,
    PRIMARY KEY (source, object_type, object_key)
);

-- Small values derived from a payload when it was stored (RawObject.parts), by raw_id:
-- what a fetch compares a changed object against, read without reading the payload.
CREATE TABLE IF NOT EXISTS raw.parts (
    raw_id BIGINT NOT NULL,
    parts  JSON NOT NULL
);

-- The latest row of every object (tombstones included: filter on deleted).
CREATE OR REPLACE VIEW raw.latest AS
SELECT o.* FROM raw.current c JOIN raw.objects o USING (raw_id);

-- What the chain layer reads: the current, not deleted objects of one source and type,
-- e.g. FROM raw.current_objects('jira', 'issue') i.
CREATE OR REPLACE MACRO raw.current_objects(src, typ) AS TABLE
SELECT * FROM raw.latest WHERE source = src AND object_type = typ AND NOT deleted;

-- The current GitLab projects, typed: what merge requests, deployments and repository
-- files are joined to for their project's path and default branch.
CREATE OR REPLACE VIEW raw.gitlab_projects AS
SELECT
    TRY_CAST(payload->>'$.id' AS BIGINT)  AS project_id,
    payload->>'$.path_with_namespace'     AS project_path,
    payload->>'$.default_branch'          AS default_branch,
    payload->>'$.web_url'                 AS web_url,
    raw_id
FROM raw.current_objects('gitlab', 'project');

-- Order of arrival of quarantine and listing rows: how far the load step has copied a
-- staging store's rows into the main database (see raw.loads).
CREATE SEQUENCE IF NOT EXISTS raw.arrival_seq;

CREATE TABLE IF NOT EXISTS raw.quarantine (
    source       VARCHAR NOT NULL,
    object_type  VARCHAR NOT NULL,
    object_key   VARCHAR,
    reason       VARCHAR NOT NULL,
    payload      JSON USING COMPRESSION ZSTD,
    fetched_at   TIMESTAMPTZ NOT NULL,
    run_id       VARCHAR NOT NULL,
    seq          BIGINT DEFAULT nextval('raw.arrival_seq')
);
ALTER TABLE raw.quarantine ADD COLUMN IF NOT EXISTS seq BIGINT DEFAULT nextval('raw.arrival_seq');

-- High-water marks per source, object type and scope (a project, a space...). They
-- advance in the same transaction as the data they cover.
CREATE TABLE IF NOT EXISTS raw.watermarks (
    source       VARCHAR NOT NULL,
    object_type  VARCHAR NOT NULL,
    scope        VARCHAR NOT NULL,
    watermark    TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, object_type, scope)
);

-- What each listing was told by the source: a total (Jira Server `total`, GitLab
-- `X-Total`, Confluence `totalSize`) versus what the client actually listed.
CREATE TABLE IF NOT EXISTS raw.listings (
    run_id       VARCHAR NOT NULL,
    source       VARCHAR NOT NULL,
    object_type  VARCHAR NOT NULL,
    scope        VARCHAR NOT NULL,
    full_listing BOOLEAN NOT NULL,     -- a complete key listing, not an incremental one
    reported     BIGINT,               -- NULL where the source reports no total
    listed       BIGINT NOT NULL,
    listed_at    TIMESTAMPTZ NOT NULL,
    seq          BIGINT DEFAULT nextval('raw.arrival_seq'),
    unit         VARCHAR               -- the unit whose staging store listed it (raw.loads)
);
ALTER TABLE raw.listings ADD COLUMN IF NOT EXISTS seq BIGINT DEFAULT nextval('raw.arrival_seq');
ALTER TABLE raw.listings ADD COLUMN IF NOT EXISTS unit VARCHAR;

-- Ingestion fans out: each unit of a source (a Jira project, a GitLab project or group, a
-- Confluence space, or all of it) is fetched into its own staging store, and one step
-- loads them here (lib/staging.py). One row per unit: how far its store is loaded.
CREATE TABLE IF NOT EXISTS raw.loads (
    source             VARCHAR NOT NULL,
    unit               VARCHAR NOT NULL,
    store_id           VARCHAR NOT NULL,  -- the staging store's identity: a new one starts over
    loaded_raw_id      BIGINT NOT NULL,   -- its raw.objects rows up to this raw_id are here
    loaded_quarantine  BIGINT NOT NULL,   -- its raw.quarantine rows up to this seq
    loaded_listings    BIGINT NOT NULL,   -- its raw.listings rows up to this seq
    loaded_at          TIMESTAMPTZ NOT NULL,
    run_id             VARCHAR NOT NULL,
    PRIMARY KEY (source, unit)
);

-- Which server each source's rows came from (its normalised base URL, or the sandbox
-- dataset's name). A database holds one organisation: pointing it at another instance
-- of a source is refused instead of merging two organisations' data.
CREATE TABLE IF NOT EXISTS raw.instances (
    source         VARCHAR PRIMARY KEY,
    instance       VARCHAR NOT NULL,
    first_run_id   VARCHAR NOT NULL,
    first_seen_at  TIMESTAMPTZ NOT NULL,
    last_run_id    VARCHAR NOT NULL,
    last_seen_at   TIMESTAMPTZ NOT NULL
);

-- The listings of the units the policy scopes now: those of each source's latest load
-- (a unit dropped from the scope no longer counts; a listing recorded before ingestion
-- fanned out belongs to the one unit there was, 'all').
CREATE OR REPLACE VIEW raw.live_listings AS
SELECT l.* FROM raw.listings l
WHERE NOT EXISTS (SELECT 1 FROM raw.loads d WHERE d.source = l.source)
   OR coalesce(l.unit, 'all') IN (
       SELECT d.unit FROM raw.loads d
       WHERE d.source = l.source
         AND d.loaded_at = (SELECT max(e.loaded_at) FROM raw.loads e WHERE e.source = l.source));
