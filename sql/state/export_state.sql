-- What each export last wrote (lib/exports.py): the analysis table's version and as_of
-- (analysis_state.builds) and the files as they were left. Files of an unchanged table,
-- still as they were written, are not written again.
CREATE SCHEMA IF NOT EXISTS analysis_state;

CREATE TABLE IF NOT EXISTS analysis_state.exports (
    table_name  VARCHAR PRIMARY KEY,
    stamp       VARCHAR NOT NULL,  -- the table's version and as_of, and the code's fingerprint
    files       VARCHAR NOT NULL   -- each file's name, size and modification time
);
