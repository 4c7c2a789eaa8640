"""Requirement recognisers over rich text: content, headed sections, tables, page headings.

These live in Python, not in the analysis SQL, because the values are rich text: Jira
fields arrive as wiki markup (REST v2), ADF JSON (REST v3) or plain changelog strings,
and Confluence bodies as storage XHTML. Telling a heading from a numbered list item, a
table from prose or "TBD" from content needs a parser, which SQL does not have. The
SQL layer registers them in ``lib/chainsql.register_functions``.

Every function accepts the three shapes a value comes in (see ``decode_rich``) and is
total: malformed input yields False, None or [] and never an exception.

Rules:

* Placeholder: a line carries no content when, case and punctuation ignored and list
  markers dropped, it is empty or made only of placeholder phrases ("TBD", "n/a / TBC").
  A line without any letter or digit ("-", "...", "…") never counts as content.
* Sections: a heading is a wiki ``hN.`` line, an ADF ``heading`` node or, in a string,
  a Markdown ``#`` line; bold/emphasis markers around its text and a trailing colon are
  ignored. A bold paragraph is not a heading. A section runs to the next heading of the
  same or a higher level and includes its sub-sections. A section is present when its
  body, without sub-headings and table header cells (labels), is not a placeholder.
* Markdown vs wiki ``#``: in wiki markup ``# item`` is a numbered list item. A string's
  ``#`` lines are read as Markdown headings only when the string has no wiki ``hN.``
  line at all and one of its ``#`` lines carries the wanted heading; otherwise they
  stay list items (so ``# Given ...`` under ``h2. Acceptance Criteria`` is content).
* Tables: wiki (``||h||`` / ``|c|``), Markdown pipe tables (header, ``|---|`` line,
  rows) and ADF ``table`` nodes. Leading all-header rows are the header (a table
  without header cells has its first row as header); the table counts when a later
  row has a data cell with content.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any

from dagster_project.lib.policy import DEFAULT_PLACEHOLDERS
from dagster_project.lib.richtext import (
    adf_to_text,
    adf_to_wiki,
    to_text,
    wiki_blocks,
    wiki_outline,
    wiki_to_adf,
)

Node = dict[str, Any]

# The shipped policy's requirements.placeholders: one list, kept in lib/policy.py.

_NUMBER_MARKER = re.compile(r"^[\W_]*\d{1,3}[.)](?:\s+|$)")
_WIKI_HEADING = re.compile(r"^\s*h[1-6]\.", re.MULTILINE)
_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_MD_FENCE = re.compile(r"^ {0,3}(?:```|~~~)")
_MD_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")
_MD_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_MARKERS = "*_+~^ \t"


# -- input shapes ---------------------------------------------------------------------------


def decode_rich(value: Any) -> Node | str:
    """A field value as an ADF dict or a (wiki/Markdown/plain) string; "" for nulls.

    JSON text is decoded only when it looks like JSON (starts with ``{`` or ``"``, or is
    ``null``); anything else, or JSON that does not parse, is kept as the string it is.
    """
    if value is None:
        return ""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        parts = (decode_rich(v) for v in value)
        return "\n\n".join(p if isinstance(p, str) else adf_to_wiki(p) for p in parts)
    if not isinstance(value, str):
        return str(value)
    head = value.lstrip()
    if head.startswith(("{", '"')) or head.rstrip() == "null":
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if decoded is None:
            return ""
        if isinstance(decoded, dict | str):
            return decoded
    return value


# -- placeholders -----------------------------------------------------------------------------


# ASCII punctuation and symbols (Unicode categories P and S): the fast path of _words.
_ASCII_PS = str.maketrans(
    {ch: " " for ch in map(chr, range(128)) if unicodedata.category(ch)[0] in "PS"}
)


def _words(text: str) -> tuple[str, ...]:
    folded = text.casefold()
    if folded.isascii():
        return tuple(folded.translate(_ASCII_PS).split())
    kept = (" " if unicodedata.category(ch)[0] in "PS" else ch for ch in folded)
    return tuple("".join(kept).split())


@lru_cache(maxsize=64)
def _phrases(placeholders: tuple[str, ...]) -> frozenset[tuple[str, ...]]:
    return frozenset(w for w in (_words(str(p)) for p in placeholders if p is not None) if w)


@lru_cache(maxsize=64)
def _vocabulary(phrases: frozenset[tuple[str, ...]]) -> frozenset[str]:
    return frozenset(word for phrase in phrases for word in phrase)


def _phrase_set(placeholders: Iterable[str] | None) -> frozenset[tuple[str, ...]]:
    if placeholders is None:
        placeholders = DEFAULT_PLACEHOLDERS
    elif isinstance(placeholders, str):
        placeholders = (placeholders,)
    try:
        return _phrases(tuple(placeholders))
    except TypeError:
        return _phrases(DEFAULT_PLACEHOLDERS)


def _only_phrases(words: tuple[str, ...], phrases: frozenset[tuple[str, ...]]) -> bool:
    """Whether ``words`` splits into a sequence of placeholder phrases."""
    if not _vocabulary(phrases).issuperset(words):  # a word of no phrase: content
        return False
    longest = max((len(p) for p in phrases), default=0)
    reachable = [True] + [False] * len(words)
    for end in range(1, len(words) + 1):
        reachable[end] = any(
            reachable[end - size] and words[end - size : end] in phrases
            for size in range(1, min(longest, end) + 1)
        )
    return reachable[-1]


def is_placeholder(text: Any, placeholders: Iterable[str] | None = DEFAULT_PLACEHOLDERS) -> bool:
    """Whether plain text carries no content: blank, or only placeholder phrases per line."""
    if text is None:
        return True
    phrases = _phrase_set(placeholders)
    for line in str(text).splitlines():
        previous = None
        while previous != line:
            previous, line = line, _NUMBER_MARKER.sub("", line, count=1)
        words = _words(line)
        if words and not _only_phrases(words, phrases):
            return False
    return True


def meaningful_text(value: Any, placeholders: Iterable[str] | None = DEFAULT_PLACEHOLDERS) -> bool:
    """Whether a field value (any shape) has text beyond placeholders."""
    try:
        return not is_placeholder(to_text(decode_rich(value)), placeholders)
    except Exception:  # a recogniser must never fail a table build
        return False


# -- sections -------------------------------------------------------------------------------


def _heading_key(text: Any) -> str:
    key = " ".join(str(text or "").split())
    previous = None
    while previous != key:
        previous = key
        key = key.strip(_MARKERS).rstrip(":").strip(_MARKERS)
    return key.casefold()


def _children(node: Any) -> list[Node]:
    content = node.get("content") if isinstance(node, dict) else None
    return [c for c in content if isinstance(c, dict)] if isinstance(content, list) else []


def _level(node: Node) -> int:
    attrs = node.get("attrs")
    level = attrs.get("level") if isinstance(attrs, dict) else None
    return level if isinstance(level, int) and 1 <= level <= 6 else 1


def _md_cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [cell.strip() or " " for cell in _MD_CELL_SPLIT.split(inner)]


def _markdown_tables(lines: list[str]) -> list[str]:
    """Markdown pipe tables rewritten as wiki tables (header row ``||``, data rows ``|``)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if (
            i + 1 < len(lines)
            and "|" in line
            and not line.lstrip().startswith("||")
            and "|" in lines[i + 1]
            and _MD_DELIMITER.match(lines[i + 1])
        ):
            out.append("||" + "||".join(_md_cells(line)) + "||")
            i += 2
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                out.append("|" + "|".join(_md_cells(lines[i])) + "|")
                i += 1
            continue
        out.append(line)
        i += 1
    return out


def _markdown_headings(lines: list[str]) -> list[str]:
    """Markdown ``#`` headings as wiki ``hN.`` lines, fenced code as ``{noformat}``."""
    out, fenced = [], False
    for line in lines:
        if _MD_FENCE.match(line):
            out.append("{noformat}")
            fenced = not fenced
            continue
        heading = None if fenced else _MD_HEADING.match(line)
        out.append(f"h{len(heading.group(1))}. {heading.group(2)}" if heading else line)
    return out


def _reads_markdown(text: str, wanted: str) -> bool:
    if _WIKI_HEADING.search(text):
        return False
    for line in text.splitlines():
        heading = _MD_HEADING.match(line)
        if heading and _heading_key(heading.group(2)) == wanted:
            return True
    return False


def _wiki_lines(text: str, wanted: str) -> list[str]:
    """The wiki-markup lines a string reads as: Markdown tables rewritten, and Markdown
    headings too when the string reads as Markdown for ``wanted``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = _markdown_tables(text.split("\n"))
    return _markdown_headings(lines) if _reads_markdown(text, wanted) else lines


def _section_nodes(value: Any, heading: Any) -> list[Node] | None:
    """The block nodes of the first section headed ``heading``; None when there is none."""
    wanted = _heading_key(heading)
    if not wanted:
        return None
    decoded = decode_rich(value)
    if isinstance(decoded, dict):
        doc = decoded if decoded.get("type") == "doc" else {"type": "doc", "content": [decoded]}
        return _section_of(_children(doc), wanted)
    lines = _wiki_lines(decoded, wanted)
    outline = wiki_outline(lines)
    if outline is None:  # block macros: the whole text is parsed
        return _section_of(_children(wiki_to_adf("\n".join(lines))), wanted)
    for index, (start, node) in enumerate(outline):
        if _heading_key(adf_to_text(node)) == wanted:
            ends = (i for i, after in outline[index + 1 :] if _level(after) <= _level(node))
            return wiki_blocks(lines[start + 1 : next(ends, len(lines))])
    return None


def _section_of(nodes: list[Node], wanted: str) -> list[Node] | None:
    """The nodes under the first heading ``wanted``, up to a heading of its level or higher."""
    for index, node in enumerate(nodes):
        if node.get("type") != "heading" or _heading_key(adf_to_text(node)) != wanted:
            continue
        body = []
        for following in nodes[index + 1 :]:
            if following.get("type") == "heading" and _level(following) <= _level(node):
                break
            body.append(following)
        return body
    return None


def _text_of(nodes: list[Node]) -> str:
    return adf_to_text({"type": "doc", "version": 1, "content": nodes})


def section_body(value: Any, heading: Any) -> str | None:
    """Plain text under the first ``heading`` (sub-headings included); None if absent."""
    try:
        nodes = _section_nodes(value, heading)
        return None if nodes is None else _text_of(nodes)
    except Exception:  # a recogniser must never fail a table build
        return None


def _without_labels(nodes: list[Node]) -> list[Node]:
    """Nodes without headings and table header cells: labels, not content."""
    kept = []
    for node in nodes:
        if node.get("type") in ("heading", "tableHeader"):
            continue
        if isinstance(node.get("content"), list):
            node = {**node, "content": _without_labels(_children(node))}
        kept.append(node)
    return kept


def section_present(
    value: Any, heading: Any, placeholders: Iterable[str] | None = DEFAULT_PLACEHOLDERS
) -> bool:
    """The section exists and holds content beyond placeholders.

    Sub-section headings and table header cells are labels and do not count as content.
    """
    try:
        nodes = _section_nodes(value, heading)
        if not nodes:
            return False
        return not is_placeholder(_text_of(_without_labels(nodes)), placeholders)
    except Exception:  # a recogniser must never fail a table build
        return False


def _tables(nodes: list[Node]) -> list[Node]:
    found = []
    for node in nodes:
        if node.get("type") == "table":
            found.append(node)
        else:
            found.extend(_tables(_children(node)))
    return found


def _table_has_data(table: Node) -> bool:
    rows = [
        [c for c in _children(row) if c.get("type") in ("tableCell", "tableHeader")]
        for row in _children(table)
        if row.get("type") == "tableRow"
    ]
    header = 0
    while (
        header < len(rows)
        and rows[header]
        and all(c.get("type") == "tableHeader" for c in rows[header])
    ):
        header += 1
    return any(
        cell.get("type") == "tableCell" and not is_placeholder(adf_to_text(cell))
        for row in rows[max(header, 1) :]
        for cell in row
    )


def section_has_table(value: Any, heading: Any) -> bool:
    """The section holds a table with a data row (beyond its header) that has content."""
    try:
        nodes = _section_nodes(value, heading)
        return bool(nodes) and any(_table_has_data(t) for t in _tables(nodes))
    except Exception:  # a recogniser must never fail a table build
        return False


# -- Confluence storage headings ------------------------------------------------------------

_HEADINGS = {f"h{n}" for n in range(1, 7)}
_HIDDEN = {
    "ac:parameter",
    "ac:default-parameter",
    "ac:placeholder",
    "ac:task-id",
    "ac:task-uuid",
    "ac:task-status",
    "ac:adf-attribute",
    "ac:adf-fallback",
    "script",
    "style",
}
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)


class HeadingParser(HTMLParser):
    """The text of every heading; fed by ``storage_headings``, or tokenised once with the
    text parser of ``lib/storage_format.py``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: list[str] = []
        self.open = 0
        self.hidden = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _HEADINGS:
            self.open += 1
        elif tag == "br" and self.open:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HIDDEN and tag not in _HEADINGS:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(self.hidden - 1, 0)
        elif tag in _HEADINGS and self.open:
            self.open -= 1
            if not self.open:
                self.flush()

    def handle_data(self, data: str) -> None:
        if self.open and not self.hidden:
            self.parts.append(data)

    def flush(self) -> None:
        text = " ".join("".join(self.parts).split())
        if text:
            self.headings.append(text)
        self.parts = []

    def finish(self) -> list[str]:
        """The headings, once the whole body was fed (a heading left open counts)."""
        if self.open:
            self.flush()
        return self.headings


def storage_headings(storage_xhtml: Any) -> list[str]:
    """Text of every ``<h1>``..``<h6>`` of a storage-format body, in order (empty ones skipped)."""
    if not isinstance(storage_xhtml, str) or not storage_xhtml:
        return []
    text = _CDATA.sub(lambda m: html.escape(m.group(1), quote=False), storage_xhtml)
    parser = HeadingParser()
    try:
        parser.feed(text)
        parser.close()
        return parser.finish()
    except Exception:  # malformed markup: fall back to a plain scan
        found = re.findall(r"<h([1-6])\b[^>]*>(.*?)</h\1\s*>", text, re.S | re.I)
        headings = (" ".join(html.unescape(re.sub(r"<[^>]+>", "", b)).split()) for _, b in found)
        return [h for h in headings if h]


def has_sections(storage_xhtml: Any, required: Iterable[str] | None) -> bool:
    """Every required heading is among the body's headings (case, trailing colon ignored)."""
    if not isinstance(storage_xhtml, str) or required is None:
        return False
    if isinstance(required, str):
        required = [required]
    try:
        present = {_heading_key(h) for h in storage_headings(storage_xhtml)}
        return all(_heading_key(r) in present for r in required if r is not None)
    except TypeError:
        return False


# -- SQL ------------------------------------------------------------------------------------
