-- What the chain build remembers (lib/incremental.py): per chain table, the fingerprint
-- of everything its rows depend on besides their own object and how many builds changed
-- it; per table built object by object, the raw rows it has derived rows from.
CREATE SCHEMA IF NOT EXISTS chain_state;

CREATE TABLE IF NOT EXISTS chain_state.builds (
    table_name   VARCHAR PRIMARY KEY,
    fingerprint  VARCHAR NOT NULL,   -- SQL, policy, code and the reference inputs
    built_at     TIMESTAMPTZ NOT NULL,
    full_build   BOOLEAN NOT NULL    -- this build started from scratch
);
-- Counts the builds that changed the table: the tables reading it rebuild when it moves.
ALTER TABLE chain_state.builds ADD COLUMN IF NOT EXISTS generation BIGINT DEFAULT 0;

CREATE TABLE IF NOT EXISTS chain_state.inputs (
    table_name   VARCHAR NOT NULL,
    raw_id       BIGINT NOT NULL     -- a raw row the table's rows for it are derived from
);

-- The raw ids of the current objects of one source and type that table `tbl` has no
-- rows of yet, from raw.current alone (no payload read).
CREATE OR REPLACE MACRO chain_state.pending_keys(src, typ, tbl) AS TABLE
SELECT raw_id FROM raw.current
WHERE source = src AND object_type = typ AND NOT deleted
  AND raw_id NOT IN (SELECT raw_id FROM chain_state.inputs WHERE table_name = tbl);

-- Those objects whole: what an incremental build derives. Read in place of
-- raw.current_objects(src, typ).
CREATE OR REPLACE MACRO chain_state.pending_objects(src, typ, tbl) AS TABLE
SELECT * FROM raw.current_objects(src, typ)
WHERE raw_id IN (SELECT raw_id FROM chain_state.pending_keys(src, typ, tbl));

-- The raw rows table `tbl` has rows of that are no longer current objects of its source
-- and type (changed: a newer row replaced them; deleted: a tombstone did).
CREATE OR REPLACE MACRO chain_state.stale_inputs(tbl, src, typ) AS TABLE
SELECT raw_id FROM chain_state.inputs
WHERE table_name = tbl
  AND raw_id NOT IN (SELECT raw_id FROM raw.current
                     WHERE source = src AND object_type = typ AND NOT deleted);

-- Per table built by key (lib/incremental.KEYED): the newest raw row when it was built;
-- the raw rows after it name the keys the next build derives again.
CREATE TABLE IF NOT EXISTS chain_state.marks (
    table_name   VARCHAR PRIMARY KEY,
    raw_mark     BIGINT NOT NULL
);
