"""The one rule for finding Jira issue keys in text (MR titles, branches, pages, URLs).

A key is ``[A-Z][A-Z0-9_]*-[1-9][0-9]*`` (project key, hyphen, a number without a
leading zero) standing as a whole word:

* not preceded by a letter, digit or ``_`` (of any script). A preceding ``-`` or ``/``
  is allowed, so branch names name their issue: ``feature/PAY-21-refunds`` and
  ``bugfix-PAY-21`` both mention ``PAY-21``;
* not followed by a letter, digit or ``_`` (of any script), nor by ``-<digits>`` that
  end the word. So ``ABC-1`` is never found inside ``ABC-12``, ``XABC-1``, ``ABC-1x``,
  ``ABC-1_2`` or the range ``ABC-1-2``. A branch slug may go on after the key, even
  with a number: ``ABC-1-fix``, ``fix/MOB-7-500-error`` and ``PAY-21-2fa-login``
  mention ``ABC-1``, ``MOB-7`` and ``PAY-21`` (branches are named ``<key>-<slug of
  the summary>``, and a summary may start with a number).

Case matters: ``abc-1`` is not a key, nor is ``ABC-0``. Punctuation around a key does
not: ``(ABC-1)``, ``ABC-1.``, ``ABC-1:`` and ``ABC-1/ABC-2`` all count.

Where Jira itself takes a key in any case (a Jira macro's ``key`` parameter, a
``/browse/KEY`` link), callers upper-case it first; :func:`browse_link_key` does so.
"""

from __future__ import annotations

import re

_KEY = r"[A-Z][A-Z0-9_]*-[1-9][0-9]*"

# ``\w`` is Unicode-aware on str patterns: letters and digits of any script, and "_".
ISSUE_KEY = re.compile(rf"(?<!\w)({_KEY})(?!\w|-\d+(?![\w-]))")
_WHOLE_KEY = re.compile(rf"{_KEY}\Z")
_BROWSE = re.compile(r"/browse/")


def find_issue_keys(text: str | None) -> list[str]:
    """The issue keys in ``text``, each once, in order of first occurrence."""
    if not text:
        return []
    return list(dict.fromkeys(m.group(1) for m in ISSUE_KEY.finditer(text)))


def is_issue_key(s: str | None) -> bool:
    """Whether the whole of ``s`` is one issue key (no surrounding space or text)."""
    return bool(s) and _WHOLE_KEY.match(s) is not None


def browse_link_key(url: str | None) -> str | None:
    """The key a Jira ``.../browse/KEY`` link points at, upper-cased, else ``None``.

    The key must start right after ``/browse/`` and end as the rule above says, so
    ``/browse/ABC-12`` gives ``ABC-12`` and ``/browse/ABC-1x`` gives nothing.
    """
    for found in _BROWSE.finditer(url or ""):
        match = ISSUE_KEY.match(url[found.end() :].upper())
        if match:
            return match.group(1)
    return None
