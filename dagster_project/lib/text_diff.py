"""How much a page changed, and where: what SQL does badly for drift rules.

``changed_words`` counts the words inserted or deleted between two plain texts (the
chain's ``body_text``), case and punctuation ignored, so a typo fix is 2 words and a
re-wrapped paragraph 0; lines carrying the approval marker's label ("Status: ...")
are left out, because approving a page is not changing it. ``changed_sections`` names
the sections (by heading) that changed, with a short before/after excerpt, for the
evidence a manager reads.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

_WORD = re.compile(r"\w+", re.UNICODE)
EXCERPT = 160


def _lines(text: str | None, ignore_label: str | None) -> list[str]:
    label = (ignore_label or "").strip().casefold()
    out = []
    for line in (text or "").splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if label and stripped.casefold().startswith(label):
            continue
        out.append(stripped)
    return out


def _words(lines: Iterable[str]) -> list[str]:
    return [w.casefold() for line in lines for w in _WORD.findall(line)]


def changed_words(before: str | None, after: str | None, ignore_label: str | None = None) -> int:
    """Words inserted plus words deleted from ``before`` to ``after``."""
    a, b = _words(_lines(before, ignore_label)), _words(_lines(after, ignore_label))
    changed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            changed += (i2 - i1) + (j2 - j1)
    return changed


def _sections(lines: list[str], headings: set[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"": []}
    current = ""
    for line in lines:
        if line.casefold() in headings:
            current = line
            out.setdefault(current, [])
        else:
            out[current].append(line)
    return out


def _excerpt(lines: list[str]) -> str | None:
    text = " / ".join(lines)
    if not text:
        return None
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def changed_sections(
    before: str | None,
    after: str | None,
    headings: Iterable[str] | None,
    ignore_label: str | None = None,
) -> list[dict[str, str | None]]:
    """Per changed section (heading; "" before the first heading): the lines only in the
    old version and the lines only in the new one, shortened."""
    known = {h.strip().casefold() for h in headings or () if h and h.strip()}
    old = _sections(_lines(before, ignore_label), known)
    new = _sections(_lines(after, ignore_label), known)
    out = []
    for heading in list(dict.fromkeys([*old, *new])):
        a, b = old.get(heading, []), new.get(heading, [])
        if _words(a) == _words(b):
            continue
        removed = [line for line in a if line not in b]
        added = [line for line in b if line not in a]
        out.append({"heading": heading, "before": _excerpt(removed), "after": _excerpt(added)})
    return out
