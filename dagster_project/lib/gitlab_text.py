"""What SQL does badly for GitLab data: path globs, diff line counts, issue keys, blob ids.

Plain functions, registered for the chain SQL in ``lib/chainsql.py`` and used by the
GitLab source to pick the repository files the policy cares about.

Glob semantics (patterns are anchored at the repository root, case-sensitive):

* ``*`` matches within one path segment (never ``/``), ``?`` one character of it,
  ``[abc]`` / ``[!abc]`` a character class;
* ``**`` as a whole segment: leading or in the middle (``**/x``, ``a/**/x``) it matches
  zero or more directories; trailing (``a/**``) it matches one or more segments, i.e.
  everything *inside* ``a`` but not a file named ``a``. So ``**/contract*/**`` matches
  ``tests/contract/x.py`` and ``contract/x.py`` but not ``src/contract_x.py``;
* ``**`` inside a segment (``a**b``) is the same as ``*``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

from dagster_project.lib.issue_keys import find_issue_keys

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_FILE_HEADER = ("--- ", "+++ ", "diff --git ", "index ", "new file mode", "deleted file mode")


# -- globs -------------------------------------------------------------------------------
def _segment_regex(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        ch = segment[i]
        if ch == "*":
            while i + 1 < len(segment) and segment[i + 1] == "*":
                i += 1
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = segment.find("]", i + 2)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = segment[i + 1 : end]
                negate = body[:1] in ("!", "^")
                body = body[1:] if negate else body
                body = body.replace("\\", "\\\\").replace("/", "")
                out.append(f"[{'^/' if negate else ''}{body}]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """The compiled regular expression for one glob (see the module docstring)."""
    parts = [p for p in pattern.strip().strip("/").split("/") if p != ""]
    if not parts:
        return re.compile(r"(?!)")
    regex = ""
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            regex += r"[^/]+(?:/[^/]+)*" if last else r"(?:[^/]+/)*"
            continue
        regex += _segment_regex(part)
        if not last:
            regex += "/"
    return re.compile(regex + r"\Z")


@lru_cache(maxsize=256)
def glob_pieces(pattern: str) -> tuple[str, ...]:
    """Plain text every path the glob matches contains, in order: the runs between ``*``
    and ``?`` of its segments without a character class. SQL tests them before asking
    for the regular expression, which most paths then never reach."""
    parts = [p for p in pattern.strip().strip("/").split("/") if p != ""]
    return tuple(
        piece for part in parts if "[" not in part for piece in re.split(r"[*?]+", part) if piece
    )


def glob_match(path: str, pattern: str) -> bool:
    return glob_regex(pattern).match(path.lstrip("/")) is not None


def matches_any(path: str | None, patterns: Iterable[str] | None) -> bool:
    if path is None or not patterns:
        return False
    return any(glob_match(path, p) for p in patterns)


def path_kinds(path: str, globs_by_kind: Mapping[str, Iterable[str]]) -> list[str]:
    """The kinds (e.g. ``spec``, ``contract_test``) whose globs match ``path``."""
    return [kind for kind, globs in globs_by_kind.items() if matches_any(path, globs)]


# -- diffs -------------------------------------------------------------------------------
def diff_line_counts(diff: str | None) -> tuple[int, int]:
    """(added, removed) lines of a unified diff as GitLab returns it in ``changes[].diff``.

    Hunks are read by their header counts, so a removed line whose text starts with
    ``--`` is not mistaken for a file header. Lines past a hunk's counts (a header
    that undercounts) are still counted unless they are file headers.
    """
    if not diff:
        return 0, 0
    added = removed = 0
    old_left = new_left = 0
    in_hunk = False
    for line in diff.split("\n"):
        header = _HUNK.match(line)
        if header:
            in_hunk = True
            old_left = int(header.group(2)) if header.group(2) is not None else 1
            new_left = int(header.group(4)) if header.group(4) is not None else 1
            continue
        if not in_hunk or line.startswith("\\"):  # "\ No newline at end of file"
            continue
        if old_left > 0 or new_left > 0:
            if line.startswith("+"):
                added += 1
                new_left -= 1
            elif line.startswith("-"):
                removed += 1
                old_left -= 1
            else:  # context (" ", or an empty line from a stripped trailing space)
                old_left -= 1
                new_left -= 1
            continue
        if line.startswith(_FILE_HEADER):
            continue
        if line.startswith("+"):
            added += 1
        elif line.startswith("-"):
            removed += 1
    return added, removed


def diff_lines(diff: str | None) -> tuple[list[int], list[int]]:
    """Line numbers a unified diff adds (in the new file) and removes (in the old file).

    Churn compares them across merge requests: lines a later merge request removes that
    an earlier one added were rewritten. Numbers are positions at each merge request's
    base, so edits in between shift them (a documented limit of churn).
    """
    added: list[int] = []
    removed: list[int] = []
    if not diff:
        return added, removed
    old_no = new_no = 0
    old_left = new_left = 0
    for line in diff.split("\n"):
        header = _HUNK.match(line)
        if header:
            old_no, new_no = int(header.group(1)), int(header.group(3))
            old_left = int(header.group(2)) if header.group(2) is not None else 1
            new_left = int(header.group(4)) if header.group(4) is not None else 1
            continue
        if (old_left <= 0 and new_left <= 0) or line.startswith("\\"):
            continue
        if line.startswith("+"):
            added.append(new_no)
            new_no += 1
            new_left -= 1
        elif line.startswith("-"):
            removed.append(old_no)
            old_no += 1
            old_left -= 1
        else:
            old_no += 1
            new_no += 1
            old_left -= 1
            new_left -= 1
    return added, removed


# -- issue keys --------------------------------------------------------------------------
# The rule lives in lib/issue_keys.py; this name stays for existing callers.
issue_keys = find_issue_keys


# -- git ---------------------------------------------------------------------------------
def git_blob_id(content: bytes) -> str:
    """The git object id of a blob: what the repository tree lists as ``id``."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
