"""Answers of the analysis layer's Python text functions, kept from one build to the next.

The recognisers and differs the analysis SQL calls (requirement sections, placeholders,
changed words and sections, API spec diffs) are pure: the same arguments give the same
answer. Their arguments are texts that seldom change overnight, yet parsing them was two
fifths of a quiet night's analysis at 100,000 issues. A table build therefore looks each
answer up by a digest of the function's name and arguments before computing it, and
keeps the answers it used in ``analysis_state.udf_memo`` (sql/state/) for the next build
of the same table. Entries are bound to the code: one written by another version of
``lib/`` is never read (``code_fingerprint``), so a changed recogniser recomputes every
answer once. What one build did not use is dropped, so the memo holds one night's texts,
not history.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa

from dagster_project.lib.incremental import code_fingerprint
from dagster_project.lib.sql import run_sql

_ROWS = pa.schema([("call", pa.binary()), ("answer", pa.string())])


def _call_digest(name: str, args: tuple[Any, ...]) -> bytes:
    """The digest of a call: each argument hashed with its kind and length, so no two
    calls share the text hashed. A text argument's bytes go in as they are; escaping
    long texts into one JSON document first took three times as long (0.3 s for a
    night's 82,000 issue texts at 100,000 issues)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=16)
    for arg in args:
        if arg is None:
            digest.update(b"\x00N")
            continue
        if isinstance(arg, str):
            kind, text = b"S", arg
        else:
            kind, text = b"J", json.dumps(arg, ensure_ascii=False, separators=(",", ":"))
        data = text.encode("utf-8", "surrogatepass")
        digest.update(b"\x00%s%d:" % (kind, len(data)))
        digest.update(data)
    return digest.digest()


class UdfMemo:
    """One table build's memo: what earlier builds answered, and what this one used."""

    def __init__(self, table: str, known: dict[bytes, str]):
        self.table = table
        self.known = known
        self.used: dict[bytes, str] = {}

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, table: str) -> UdfMemo:
        run_sql(con, "state/analysis_state")
        rows = con.execute(
            "SELECT call, answer FROM analysis_state.udf_memo WHERE table_name = ? AND code = ?",
            [table, code_fingerprint()],
        ).fetchall()
        return cls(table, {bytes(call): answer for call, answer in rows})

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` answering from the memo where it can; DuckDB may call it from several
        threads, which only ever add the same answer for the same digest."""

        @functools.wraps(fn)  # DuckDB reads the arity from the signature
        def memoized(*args: Any) -> Any:
            call = _call_digest(name, args)
            answer = self.known.get(call)
            if answer is None:
                result = fn(*args)
                self.used[call] = json.dumps(result, ensure_ascii=False)
                return result
            self.used[call] = answer
            return json.loads(answer)

        return memoized

    def save(self, con: duckdb.DuckDBPyConnection) -> None:
        """Replace the table's entries with the answers this build used."""
        rows = pa.Table.from_pydict(
            {"call": list(self.used), "answer": list(self.used.values())}, schema=_ROWS
        )
        con.register("udf_memo_rows", rows)
        try:
            run_sql(
                con,
                "state/udf_memo_save",
                {"memo_table": self.table, "memo_code": code_fingerprint()},
            )
        finally:
            con.unregister("udf_memo_rows")
