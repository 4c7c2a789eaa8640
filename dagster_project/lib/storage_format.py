"""Confluence storage format (XHTML with ``ac:``/``ri:`` elements) -> text and issue mentions.

Pages and their versions arrive as storage XHTML. The chain layer needs three things
from it, exposed to SQL by ``lib/chainsql.py``:

* ``storage_to_text``: what a reader sees, one line per block (paragraph, heading,
  list item, table row with cells joined by `` | ``). Macro parameters are settings,
  not prose, and are dropped, except where the macro *shows* its parameter: a Jira
  macro shows its issue key and a status lozenge its title (``Status: <lozenge
  Approved>`` reads "Status: Approved"). Code bodies (CDATA) and link bodies stay.
* ``issue_mentions``: the Jira issue keys a body refers to, as ``(key, found_by)``:
  ``jira_macro`` (``<ac:parameter ac:name="key">``), ``jira_link`` (an ``<a href>``
  to ``/browse/KEY``) and ``text`` (the key as a whole word in the prose, outside
  Jira macros). Whole word: ``ABC-1`` is not found inside ``ABC-12`` or ``XABC-1``.
* ``headings_of``: the text of every heading, as ``lib/recognisers.storage_headings``
  reads it, from the same tokenising as the text and the mentions.
* ``carries_marker``: whether a text carries an approval marker such as
  ``Status: Approved``, at the start of a line or a table cell, ``:`` or a cell
  boundary between label and value, case and spacing ignored.

The parser is the standard library's lenient HTML parser: nothing here raises on
malformed markup, unknown macros contribute nothing but their rich-text bodies.
"""

from __future__ import annotations

import atexit
import html
import os
import pickle
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import NamedTuple

from dagster_project.lib.issue_keys import browse_link_key, find_issue_keys, is_issue_key
from dagster_project.lib.recognisers import HeadingParser, storage_headings

_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2007\u202f]+")

JIRA_MACROS = {"jira", "jiraissues"}
# Macros other than Jira's whose visible output is one of their parameters.
SHOWN_PARAMETER = {"status": "title"}

_BLOCKS = {
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "tr",
    "table",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "blockquote",
    "pre",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "ac:task",
    "ac:layout",
    "ac:layout-section",
    "ac:layout-cell",
    "ac:rich-text-body",
    "ac:plain-text-body",
}
_CELLS = {"td", "th"}
# Elements whose text is never shown: settings, ids, template hints.
_HIDDEN = {
    "ac:parameter",
    "ac:default-parameter",
    "ac:task-id",
    "ac:task-uuid",
    "ac:task-status",
    "ac:placeholder",
    "ac:adf-attribute",
    "ac:adf-fallback",
    "script",
    "style",
}


@dataclass
class _Macro:
    name: str
    params: dict[str, str] = field(default_factory=dict)
    param: str | None = None  # the parameter being read


class _StorageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.prose: list[str] = []  # text outside Jira macros, for text mentions
        self.macros: list[_Macro] = []
        self.hidden = 0
        self.cell_depth = 0  # open td/th elements: blocks inside a cell do not break its row
        self.row_cells = 0  # cells closed so far in the current row
        self.jira_keys: list[str] = []
        self.link_keys: list[str] = []
        self.link_titles: list[str | None] = []  # open ac:link elements: ri:page title
        self.link_had_text: list[bool] = []

    # -- output ----------------------------------------------------------------------
    def emit(self, text: str, *, prose: bool = True) -> None:
        if not text:
            return
        self.line.append(text)
        if prose and not any(m.name in JIRA_MACROS for m in self.macros):
            self.prose.append(text)
        if self.link_had_text:
            self.link_had_text[-1] = True

    def newline(self) -> None:
        if self.cell_depth:
            self.emit(" ")
            return
        text = _SPACES.sub(" ", "".join(self.line)).strip()
        if text:
            self.lines.append(text)
        self.line = []
        self.prose.append("\n")
        self.row_cells = 0

    # -- parser callbacks --------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag in ("ac:structured-macro", "ac:macro"):
            self.macros.append(_Macro(attributes.get("ac:name", "").lower()))
            return
        if tag in ("ac:parameter", "ac:default-parameter") and self.macros:
            name = attributes.get("ac:name", "") if tag == "ac:parameter" else ""
            self.macros[-1].param = name.lower()
            self.macros[-1].params.setdefault(name.lower(), "")
        if tag in _HIDDEN:
            self.hidden += 1
            return
        if tag == "br":
            self.newline()
            return
        if tag in _CELLS:
            if self.row_cells and not self.cell_depth:
                self.emit(" | ")
            self.cell_depth += 1
            return
        if tag == "a":
            found = browse_link_key(attributes.get("href", ""))
            if found:
                self.link_keys.append(found)
            return
        if tag == "ac:link":
            self.link_titles.append(None)
            self.link_had_text.append(False)
            return
        if tag == "ri:page" and self.link_titles:
            self.link_titles[-1] = attributes.get("ri:content-title") or None
            return
        if tag == "time" and attributes.get("datetime"):  # a date picked in the editor
            self.emit(attributes["datetime"])
            return
        if tag == "ac:task":
            self.newline()
            return
        self.newline_if_block(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("ac:structured-macro", "ac:macro"):
            if self.macros:
                self._close_macro(self.macros.pop())
            return
        if tag in ("ac:parameter", "ac:default-parameter") and self.macros:
            self.macros[-1].param = None
        if tag in _HIDDEN:
            self.hidden = max(self.hidden - 1, 0)
            return
        if tag in _CELLS:
            if self.cell_depth:
                self.cell_depth -= 1
                self.row_cells += not self.cell_depth
            return
        if tag == "ac:link" and self.link_titles:
            title, had_text = self.link_titles.pop(), self.link_had_text.pop()
            if title and not had_text:
                self.emit(title)
            return
        self.newline_if_block(tag)

    def handle_data(self, data: str) -> None:
        if self.macros and self.macros[-1].param is not None:
            macro = self.macros[-1]
            macro.params[macro.param] = macro.params.get(macro.param, "") + data
            return
        if self.hidden:
            return
        self.emit(data.replace("\n", " "))

    # -- helpers ---------------------------------------------------------------------
    def newline_if_block(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.newline()

    def _close_macro(self, macro: _Macro) -> None:
        if macro.name in JIRA_MACROS:
            key = macro.params.get("key", "").strip()
            if not key:  # older storage: the key as the default (unnamed) parameter
                key = macro.params.get("", "").strip()
            if is_issue_key(key.upper()):
                key = key.upper()
                self.jira_keys.append(key)
                self.emit(key, prose=False)
            return
        shown = SHOWN_PARAMETER.get(macro.name)
        if shown and macro.params.get(shown, "").strip():
            self.emit(macro.params[shown].strip())

    def close(self) -> None:
        super().close()
        self.cell_depth = 0
        self.newline()


class _TextAndHeadings(_StorageParser):
    """One tokenising of a body for both the text parser and the heading one: a page
    version needs its text, mentions and headings, and HTMLParser's tokenising is most
    of the cost of each (two parses of 160,000 versions were 47 s of a first nightly)."""

    def __init__(self) -> None:
        super().__init__()
        self.headings = HeadingParser()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        super().handle_starttag(tag, attrs)
        self.headings.handle_starttag(tag, attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        _StorageParser.handle_starttag(self, tag, attrs)
        _StorageParser.handle_endtag(self, tag)
        self.headings.handle_startendtag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        super().handle_endtag(tag)
        self.headings.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        super().handle_data(data)
        self.headings.handle_data(data)


def _parse(storage: str | None, parser: _StorageParser | None = None) -> _StorageParser:
    parser = parser or _StorageParser()
    if storage:
        # CDATA (code bodies) becomes escaped text: the parser's CDATA handling differs
        # between Python versions.
        text = _CDATA.sub(lambda m: html.escape(m.group(1), quote=False), storage)
        try:
            parser.feed(text)
            parser.close()
        except Exception:  # malformed markup must never fail a table build
            fallback = _StorageParser()
            fallback.lines = [
                line for line in (_SPACES.sub(" ", t).strip() for t in _strip_tags(text)) if line
            ]
            return fallback
    return parser


def _strip_tags(text: str) -> list[str]:
    return html.unescape(re.sub(r"<[^>]+>", "\n", text)).split("\n")


class _Parsed(NamedTuple):
    lines: tuple[str, ...]
    jira_keys: tuple[str, ...]
    link_keys: tuple[str, ...]
    prose: str
    headings: tuple[str, ...]


def _parse_body(storage: str | None) -> _Parsed:
    """What the text, the mentions and the headings of a body are read from."""
    both = _TextAndHeadings()
    parser = _parse(storage, both)
    if parser is both:
        headings = both.headings.finish()
    else:  # malformed: each reader's own fallback, as when each parsed on its own
        parser, headings = _parse(storage), storage_headings(storage)
    return _Parsed(
        tuple(parser.lines),
        tuple(parser.jira_keys),
        tuple(parser.link_keys),
        "".join(parser.prose),
        tuple(headings),
    )


# Parsed bodies, oldest first: SQL asks for the text, the headings and the mentions of
# the same bodies, a vector of rows (2,048) at a time.
_CACHE_SIZE = 4096
_cache: dict[str | None, _Parsed] = {}
_cache_lock = threading.Lock()


def _parsed(storage: str | None) -> _Parsed:
    found = _cache.get(storage)
    return found if found is not None else _remember(storage, _parse_body(storage))


def _remember(storage: str | None, parsed: _Parsed) -> _Parsed:
    with _cache_lock:
        while len(_cache) >= _CACHE_SIZE:
            del _cache[next(iter(_cache))]
        _cache[storage] = parsed
    return parsed


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


class _Workers:
    """Worker processes for the parsing of a large build. The first build of
    ``chain.page_versions`` parses every stored version of every page (145,641 bodies
    at 100,000 issues, about 20 s on one core, while the machine's other cores idle);
    a nightly parses a few hundred. So a process starts its workers only once it has
    parsed ``after`` bodies, and hands them batches of at least ``batch`` bodies not
    parsed yet. Each worker is ``python -m dagster_project.lib.storage_format`` over a
    pipe, not a ``multiprocessing`` child: those import the caller's main script again,
    and a script without a ``__main__`` guard would run again in each. The workers run
    this module's own parser: their answers are the ones this process would give.
    Should they fail to start or break, parsing goes on here."""

    after = 8192
    batch = 256

    def __init__(self) -> None:
        self.parsed = 0  # bodies this process had parsed, here or by the workers
        self.by_workers = 0
        self.count = min(4, os.cpu_count() or 1)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._broken = False
        self._lock = threading.Lock()

    def parse(self, bodies: list[str | None]) -> list[_Parsed] | None:
        """The bodies parsed by the workers, or None where this process should parse."""
        self.parsed += len(bodies)
        if self._broken or len(bodies) < self.batch or self.parsed <= self.after:
            return None
        try:
            with self._lock:  # one vector at a time: each pipe carries one exchange
                if not self._procs:
                    if self.count < 2:
                        self._broken = True
                        return None
                    self._procs = [_start_worker() for _ in range(self.count)]
                step = -(-len(bodies) // len(self._procs))
                parts = [bodies[i : i + step] for i in range(0, len(bodies), step)]
                with ThreadPoolExecutor(len(parts)) as pool:
                    answers = list(pool.map(_exchange, self._procs, parts))
            parsed = [p for answer in answers for p in answer]
        except Exception:  # no worker started, or one died: parse here from now on
            self._broken = True
            self.close()
            return None
        self.by_workers += len(parsed)
        return parsed

    def close(self) -> None:
        with self._lock:
            procs, self._procs = self._procs, []
        for proc in procs:
            proc.kill()
            proc.wait()


def _start_worker() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dagster_project.lib.storage_format"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def _exchange(proc: subprocess.Popen[bytes], bodies: list[str | None]) -> list[_Parsed]:
    assert proc.stdin is not None and proc.stdout is not None
    pickle.dump(bodies, proc.stdin)
    proc.stdin.flush()
    answer = pickle.load(proc.stdout)
    if len(answer) != len(bodies):
        raise RuntimeError("a parsing worker answered another batch")
    return [_Parsed(*p) for p in answer]


def _serve() -> None:
    """A worker: parse each batch of bodies read from stdin, answer on stdout."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            bodies = pickle.load(stdin)
        except EOFError:
            return
        pickle.dump([tuple(_parse_body(b)) for b in bodies], stdout)
        stdout.flush()


_workers = _Workers()
atexit.register(_workers.close)


def parse_ahead(bodies: Sequence[str | None]) -> None:
    """Parse the bodies of a vector not parsed yet (by worker processes in a large
    build), so that the text, the headings and the mentions asked next find them."""
    missing = list(dict.fromkeys(b for b in bodies if b not in _cache))
    parsed = _workers.parse(missing) if missing else None
    for body, result in zip(missing, parsed or map(_parse_body, missing), strict=True):
        _remember(body, result)


def release_workers() -> None:
    """Stop the worker processes (a build is over); a later large build starts them anew,
    unless they failed in this process before."""
    _workers.close()
    _workers.parsed = 0


def storage_to_text(storage: str | None) -> str:
    """Plain text of a storage-format body: one line per block, markup removed."""
    return "\n".join(_parsed(storage).lines)


def headings_of(storage: str | None) -> list[str]:
    """The text of every heading, in order, empty ones skipped (``storage_headings``)."""
    return list(_parsed(storage).headings)


def issue_mentions(storage: str | None) -> list[tuple[str, str]]:
    """``(issue_key, found_by)`` pairs in order of first appearance, each pair once."""
    parsed = _parsed(storage)
    found: dict[tuple[str, str], None] = {}
    for key in parsed.jira_keys:
        found[(key, "jira_macro")] = None
    for key in parsed.link_keys:
        found[(key, "jira_link")] = None
    for key in find_issue_keys(parsed.prose):
        found[(key, "text")] = None
    return list(found)


def carries_marker(text: str | None, marker: str | None) -> bool:
    """Whether ``text`` carries ``marker`` (e.g. ``Status: Approved``) as a line or cell.

    ``Label: Value`` markers also match a table row ``Label | Value``; a marker without
    a colon matches as a phrase at the start of a line or cell.
    """
    if not text or not marker or not marker.strip():
        return False
    label, colon, value = marker.partition(":")
    words = r"\s+".join(re.escape(w) for w in label.split())
    if colon and value.strip():
        values = r"\s+".join(re.escape(w) for w in value.split())
        pattern = rf"(?:^|\|)\s*{words}\s*(?::|\|)\s*{values}(?![\w-])"
    else:
        pattern = rf"(?:^|\|)\s*{words}(?![\w-])"
    return re.search(pattern, text, re.IGNORECASE | re.MULTILINE) is not None


if __name__ == "__main__":
    _serve()
