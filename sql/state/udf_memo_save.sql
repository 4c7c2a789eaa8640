-- A table's memo after its build: exactly the answers the build used (registered as
-- udf_memo_rows), so the memo holds one night's texts, not history.
DELETE FROM analysis_state.udf_memo WHERE table_name = getvariable('memo_table');

INSERT INTO analysis_state.udf_memo
SELECT getvariable('memo_table'), getvariable('memo_code'), call, answer FROM udf_memo_rows;
