-- What the analysis build remembers (lib/udf_memo.py): the answers of the pure text
-- functions its SQL calls in Python, per table, bound to the code that computed them.
CREATE SCHEMA IF NOT EXISTS analysis_state;

CREATE TABLE IF NOT EXISTS analysis_state.udf_memo (
    table_name  VARCHAR NOT NULL,  -- the table whose build used the answer
    code        VARCHAR NOT NULL,  -- code_fingerprint() of the version that computed it
    call        BLOB NOT NULL,     -- digest of the function's name and arguments
    answer      VARCHAR NOT NULL   -- the answer as JSON
);

-- Per analysis table, what its last build read (lib/analysis_reuse.py): a table none of
-- whose inputs changed, with no event between the two as_ofs, is kept as it is.
CREATE SEQUENCE IF NOT EXISTS analysis_state.build_seq;
CREATE TABLE IF NOT EXISTS analysis_state.builds (
    table_name   VARCHAR PRIMARY KEY,
    fingerprint  VARCHAR NOT NULL,      -- SQL, policy, code and the versions of its inputs
    as_of        TIMESTAMPTZ NOT NULL,  -- the moment it was judged at (last kept or built)
    version      VARCHAR NOT NULL,      -- what its readers compare: the build's number,
                                        -- or a digest of its rows if it moves with time
    judged_at    TIMESTAMPTZ NOT NULL,
    kept         BOOLEAN NOT NULL       -- the last run kept it instead of building it
);
