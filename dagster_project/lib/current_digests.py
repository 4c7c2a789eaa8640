"""The content digests of a raw store's current objects of one type, by key, in 32
bytes an object; and which keys have a row in ``raw.current`` at all (a tombstone's).

A raw store decides whether an object changed by comparing its content digest with the
one stored for its key, and it keeps that view for the length of a fetch. As a dict of
``str`` keys and ``bytes`` digests it held 253 MB of the job's memory at 100,000 issues
(the GitLab store's 1.1 M objects); here it is 33 MB. A key is held as its 16-byte
MD5 fingerprint and a digest as its first 16 bytes, in two numpy arrays sorted by
fingerprint; what the store commits goes to a dict folded into them once it grows.
DuckDB computes the fingerprints and digests of the stored rows itself (``read``), as
columns of integers, so loading a million keys creates no Python object per key.
Two of a million keys (ids the servers assign) share a fingerprint with odds of about
10^-27.

Reading the view costs DuckDB an MD5 per stored key: 0.7 s for the GitLab store's
425,000 notes, every night, whatever the day changed. A staging store therefore saves
its views when a fetch ends (``save``), each with the mark of the rows it equals (the
type's newest ``raw_id`` in ``raw.current`` and its row count), and the next fetch
loads a view whose mark still holds (``load``). Every change of a current row gives it
a new ``raw_id``, so a view saved before a later commit (a run killed after it) no
longer matches and is read again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import numpy as np

WIDTH = 16
_DTYPE = f"S{WIDTH}"
# A fold sorts the arrays again: a first nightly's 1.1 M GitLab objects fold 17 times.
FOLD_AT = 65_536
# The digest of a key whose current row is a tombstone (its stored content hash reads
# "deleted"): it matches no content.
TOMBSTONE = b"deleted"


def fingerprint(key: str) -> bytes:
    """The key's MD5 as DuckDB's ``md5_number_upper`` and ``md5_number_lower`` read it
    (two little-endian halves), each half written big-endian."""
    md5 = hashlib.md5(key.encode("utf-8"), usedforsecurity=False).digest()
    return md5[7::-1] + md5[:7:-1]


def _fingerprints(keys: Iterable[str]) -> np.ndarray:
    return np.array(list(map(fingerprint, keys)), dtype=_DTYPE)


def _pairs(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Two columns of unsigned 64-bit integers as 16-byte strings, each big-endian."""
    pairs = np.empty(len(high), dtype=[("high", ">u8"), ("low", ">u8")])
    pairs["high"], pairs["low"] = high, low
    return pairs.view(_DTYPE).reshape(-1).copy()


class CurrentDigests:
    """Key -> content digest (its first 16 bytes) of the current objects of one type;
    ``TOMBSTONE`` for a key whose current row is a tombstone."""

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=_DTYPE)  # fingerprints, sorted
        self._digests = np.empty(0, dtype=_DTYPE)
        self._recent: dict[str, bytes] = {}  # committed since the last fold

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, source: str, object_type: str) -> CurrentDigests:
        """From the ``raw.current`` rows of a source's type; a tombstone (or a content
        hash that is not hex) reads as ``TOMBSTONE``."""
        columns = con.execute(
            """
            SELECT k1, k2, coalesce(d1, 0) AS d1, coalesce(d2, 0) AS d2,
                   deleted OR d1 IS NULL OR d2 IS NULL AS unreadable
            FROM (
                SELECT md5_number_upper(object_key) AS k1, md5_number_lower(object_key) AS k2,
                       TRY_CAST('0x' || content_hash[1:16] AS UBIGINT) AS d1,
                       TRY_CAST('0x' || content_hash[17:32] AS UBIGINT) AS d2, deleted
                FROM raw.current WHERE source = ? AND object_type = ?
            )
            """,
            [source, object_type],
        ).fetchnumpy()
        index = cls()
        index._keys = _pairs(columns["k1"], columns["k2"])
        index._digests = _pairs(columns["d1"], columns["d2"])
        index._digests[np.asarray(columns["unreadable"], dtype=bool)] = TOMBSTONE
        index._sort()
        return index

    @staticmethod
    def mark(con: duckdb.DuckDBPyConnection, source: str, object_type: str) -> str:
        """What a view equals: the type's newest current ``raw_id`` and its row count."""
        ((newest, rows),) = con.execute(  # fetched to the end: the connection stays usable
            "SELECT max(raw_id), count(*) FROM raw.current WHERE source = ? AND object_type = ?",
            [source, object_type],
        ).fetchall()
        return f"{newest}/{rows}"

    @classmethod
    def load(cls, path: Path, mark: str) -> CurrentDigests | None:
        """The view saved at ``path`` if it was saved for ``mark``, else None."""
        try:
            with np.load(path, allow_pickle=False) as saved:
                if str(saved["mark"]) != mark:
                    return None
                index = cls()
                index._keys, index._digests = saved["keys"], saved["digests"]
                return index
        except (OSError, KeyError, ValueError):  # absent, or not a whole view
            return None

    def save(self, path: Path, mark: str) -> None:
        """Write the view (``mark``: what it equals) in place of any earlier one."""
        if self._recent:
            self._fold()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as out:
            np.savez(out, keys=self._keys, digests=self._digests, mark=np.array(mark))
        os.replace(partial, path)

    def contains(self, keys: Sequence[str]) -> list[bool]:
        """Whether each key is held by a current object (not by a tombstone)."""
        found = self._lookup(keys)
        return ((found != b"") & (found != TOMBSTONE)).tolist()

    def compare(
        self, keys: Sequence[str], digests: Sequence[bytes]
    ) -> tuple[list[bool], list[bool]]:
        """Whether each key is held with that digest, and whether it has a current row
        at all (a tombstone's included): one look-up for both."""
        found = self._lookup(keys)
        wanted = np.array([digest[:WIDTH] for digest in digests], dtype=_DTYPE)
        return (found == wanted).tolist(), (found != b"").tolist()

    def set(self, key: str, digest: bytes | None) -> None:
        """The key now holds ``digest`` (None: its current row is now a tombstone)."""
        self._recent[key] = TOMBSTONE if digest is None else digest[:WIDTH]
        if len(self._recent) >= FOLD_AT:
            self._fold()

    # -- inside -----------------------------------------------------------------------
    def _lookup(self, keys: Sequence[str]) -> np.ndarray:
        """The digest held for each key; b"" for a key not held."""
        found = np.zeros(len(keys), dtype=_DTYPE)
        if len(self._keys) and len(keys):
            wanted = _fingerprints(keys)
            at, hit = self._find(wanted)
            found[hit] = self._digests[at[hit]]
        for i, key in enumerate(keys):
            if key in self._recent:
                found[i] = self._recent[key]
        return found

    def _find(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``wanted`` fingerprints in the arrays, and which are there."""
        at = np.searchsorted(self._keys, wanted)
        inside = at < len(self._keys)
        hit = np.zeros(len(wanted), dtype=bool)
        hit[inside] = self._keys[at[inside]] == wanted[inside]
        return at, hit

    def _fold(self) -> None:
        keys = _fingerprints(self._recent)
        digests = np.array(list(self._recent.values()), dtype=_DTYPE)
        keep = np.ones(len(self._keys), dtype=bool)
        at, hit = self._find(keys)
        keep[at[hit]] = False  # replaced
        self._keys = np.concatenate([self._keys[keep], keys])
        self._digests = np.concatenate([self._digests[keep], digests])
        self._sort()
        self._recent.clear()

    def _sort(self) -> None:
        order = np.argsort(self._keys, kind="stable")
        self._keys = self._keys[order]
        self._digests = self._digests[order]
