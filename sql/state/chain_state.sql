-- What the incremental chain build remembers (lib/incremental.py): per chain table built
-- object by object, the fingerprint of everything its rows depend on besides their own
-- object, and the raw rows it has derived rows from.
CREATE SCHEMA IF NOT EXISTS chain_state;

CREATE TABLE IF NOT EXISTS chain_state.builds (
    table_name   VARCHAR PRIMARY KEY,
    fingerprint  VARCHAR NOT NULL,   -- SQL, policy, code and the reference inputs
    built_at     TIMESTAMPTZ NOT NULL,
    full_build   BOOLEAN NOT NULL    -- this build started from scratch
);

CREATE TABLE IF NOT EXISTS chain_state.inputs (
    table_name   VARCHAR NOT NULL,
    raw_id       BIGINT NOT NULL     -- a raw row the table's rows for it are derived from
);

-- The current objects of one source and type that table `tbl` has no rows of yet: what
-- an incremental build derives. Read in place of raw.current_objects(src, typ).
CREATE OR REPLACE MACRO chain_state.pending_objects(src, typ, tbl) AS TABLE
SELECT * FROM raw.current_objects(src, typ)
WHERE raw_id NOT IN (SELECT raw_id FROM chain_state.inputs WHERE table_name = tbl);

-- The raw rows table `tbl` has rows of that are no longer current objects of its source
-- and type (changed: a newer row replaced them; deleted: a tombstone did).
CREATE OR REPLACE MACRO chain_state.stale_inputs(tbl, src, typ) AS TABLE
SELECT raw_id FROM chain_state.inputs
WHERE table_name = tbl
  AND raw_id NOT IN (SELECT raw_id FROM raw.current_objects(src, typ));
