-- What the analysis build remembers (lib/udf_memo.py): the answers of the pure text
-- functions its SQL calls in Python, per table, bound to the code that computed them.
CREATE SCHEMA IF NOT EXISTS analysis_state;

CREATE TABLE IF NOT EXISTS analysis_state.udf_memo (
    table_name  VARCHAR NOT NULL,  -- the table whose build used the answer
    code        VARCHAR NOT NULL,  -- code_fingerprint() of the version that computed it
    call        BLOB NOT NULL,     -- digest of the function's name and arguments
    answer      VARCHAR NOT NULL   -- the answer as JSON
);
