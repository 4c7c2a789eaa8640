"""Jira rich text: Atlassian Document Format (ADF) <-> wiki markup, and both -> plain text.

Jira Cloud's v3 API returns descriptions, comments and textarea custom fields as ADF
JSON; v2 (Cloud and Server/DC) returns the same values as wiki markup. The emulator
converts between the two so one dataset can be served through either API version, and
ingestion uses ``to_text`` / ``sections`` to normalise whatever it received.

Coverage: headings, paragraphs and line breaks, bullet/numbered (nested, mixed) lists,
tables, code and noformat blocks, quotes, panels, rules, links, mentions and the text
marks (bold, italic, strike, underline, super/subscript, monospace, colour), including
Jira's ``{*}intra{*}word`` brace form. Images and attachments become ``!name!`` text in
wiki markup (ADF media needs ids that wiki markup does not carry). Nothing here raises
on malformed input: unknown ADF nodes contribute their text, stray markup stays text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Node = dict[str, Any]

# -- shared vocabulary ----------------------------------------------------------------

# Simple wiki marks: marker character -> ADF mark.
_MARKERS: dict[str, Node] = {
    "*": {"type": "strong"},
    "_": {"type": "em"},
    "-": {"type": "strike"},
    "+": {"type": "underline"},
    "^": {"type": "subsup", "attrs": {"type": "sup"}},
    "~": {"type": "subsup", "attrs": {"type": "sub"}},
}
# Canonical order of marks on a text node, outermost first when written as wiki markup.
_MARK_ORDER = ("link", "textColor", "strong", "em", "underline", "strike", "subsup", "code")
_URL = re.compile(r"(?:https?|ftp|file)://[^\s\[\]{}|<>\"']+|mailto:[^\s\[\]{}|<>\"']+")
# Characters a backslash escapes in wiki markup ("\\" itself is a line break).
_ESCAPABLE = set("*_-+^~[]{}|!?#.:")
_URL_TRAILING = ".,;:!?)'\""
_ACCOUNT_ID = re.compile(r"^(?:[0-9a-f]{24}|\d+:[0-9a-f-]{36}|[0-9a-zA-Z-]+:[0-9a-zA-Z-]+)$")

_HEADING = re.compile(r"^\s*h([1-6])\.\s?(.*)$")
_LIST_ITEM = re.compile(r"^\s*([*#]+|-)\s+(.*)$")
_RULE = re.compile(r"^\s*-{4,}\s*$")
_BQ = re.compile(r"^\s*bq\.\s?(.*)$")
_BLOCK_MACRO = re.compile(r"^\s*\{(code|noformat|quote|panel)(?::([^}]*))?\}(.*)$")
_MARK_CHAR = re.compile(r"[*_\-+^~]")


def _mark_key(mark: Node) -> int:
    kind = mark.get("type")
    return _MARK_ORDER.index(kind) if kind in _MARK_ORDER else len(_MARK_ORDER)


def _text(text: str, marks: list[Node]) -> Node:
    node: Node = {"type": "text", "text": text}
    if marks:
        node["marks"] = sorted((dict(m) for m in marks), key=_mark_key)
    return node


def _paragraph(inline: list[Node]) -> Node:
    return {"type": "paragraph", "content": inline} if inline else {"type": "paragraph"}


def _doc(content: list[Node]) -> Node:
    return {"type": "doc", "version": 1, "content": content}


# -- wiki markup -> ADF: inline ----------------------------------------------------------


def _find_unescaped(text: str, needle: str, start: int) -> int:
    i = start
    while True:
        j = text.find(needle, i)
        if j <= 0 or text[j - 1] != "\\":
            return j
        i = j + 1


def _is_opener(text: str, i: int) -> bool:
    before = text[i - 1] if i > 0 else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    return not before.isalnum() and not after.isspace()


def _is_closer(text: str, j: int) -> bool:
    before = text[j - 1] if j > 0 else " "
    after = text[j + 1] if j + 1 < len(text) else " "
    return not before.isspace() and before != "\\" and not after.isalnum()


def _scan(text: str, start: int, stop: Callable[[int], bool]) -> int:
    """First index from ``start`` where ``stop`` holds, outside escapes, links and code."""
    j = start
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == "[":
            end = _find_unescaped(text, "]", j + 1)
            if end != -1:
                j = end + 1
                continue
        if text.startswith("{{", j):
            end = text.find("}}", j + 2)
            if end != -1:
                j = end + 2
                continue
        if stop(j):
            return j
        j += 1
    return -1


def _find_closer(text: str, char: str, start: int) -> int:
    """Index of the marker closing one opened before ``start``."""
    return _scan(text, start, lambda j: text[j] == char and _is_closer(text, j))


def _link_mark(href: str) -> Node:
    return {"type": "link", "attrs": {"href": href}}


def _mention(ref: str) -> Node:
    ident = ref[len("accountid:") :] if ref.lower().startswith("accountid:") else ref
    return {"type": "mention", "attrs": {"id": ident, "text": f"@{ident}"}}


class _Inline:
    """Accumulates inline nodes, merging neighbouring text that carries the same marks."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []

    def text(self, text: str, marks: list[Node]) -> None:
        if not text:
            return
        node = _text(text, marks)
        last = self.nodes[-1] if self.nodes else None
        if last and last.get("type") == "text" and last.get("marks") == node.get("marks"):
            last["text"] += text
        else:
            self.nodes.append(node)

    def add(self, node: Node) -> None:
        self.nodes.append(node)

    def extend(self, nodes: list[Node]) -> None:
        for node in nodes:
            if node.get("type") == "text":
                self.text(node["text"], node.get("marks", []))
            else:
                self.add(node)


def _may_hold_markup(text: str) -> bool:
    """Whether anything in ``text`` can start inline markup: an escape, a brace or
    bracket form, a URL, or a mark character that may open. Without, text is itself."""
    if "\\" in text or "{" in text or "[" in text or "://" in text or "mailto:" in text:
        return True
    return any(_is_opener(text, m.start()) for m in _MARK_CHAR.finditer(text))


def _parse_inline(text: str, marks: list[Node] | None = None) -> list[Node]:
    """Inline wiki markup -> ADF inline nodes (one line; ``\\\\`` is a line break)."""
    marks = list(marks or [])
    if not _may_hold_markup(text):  # most prose: no character-by-character scan
        return [_text(text, marks)] if text else []
    out = _Inline()
    buf: list[str] = []

    def flush() -> None:
        if buf:
            out.text("".join(buf), marks)
            buf.clear()

    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "\\":
                flush()
                out.add({"type": "hardBreak"})
                i += 2
                continue
            if nxt in _ESCAPABLE:
                buf.append(nxt)
                i += 2
                continue
        if text.startswith("{{", i):
            end = text.find("}}", i + 2)
            if end > i + 2:
                flush()
                keep = [m for m in marks if m.get("type") == "link"]
                out.text(text[i + 2 : end], [*keep, {"type": "code"}])
                i = end + 2
                continue
        if ch == "{":
            brace = re.match(r"\{([*_\-+^~])\}", text[i:])
            if brace:
                char = brace.group(1)
                end = text.find("{" + char + "}", i + 3)
                if end > i + 3:
                    flush()
                    out.extend(_parse_inline(text[i + 3 : end], [*marks, _MARKERS[char]]))
                    i = end + 3
                    continue
            color = re.match(r"\{color:([^}]+)\}", text[i:])
            if color:
                end = text.find("{color}", i + color.end())
                if end != -1:
                    flush()
                    mark = {"type": "textColor", "attrs": {"color": color.group(1).strip()}}
                    inner = text[i + color.end() : end]
                    out.extend(_parse_inline(inner, [*marks, mark]))
                    i = end + len("{color}")
                    continue
        if ch == "[":
            end = _find_unescaped(text, "]", i + 1)
            if end != -1:
                body = text[i + 1 : end]
                node = _parse_bracket(body, marks)
                if node is not None:
                    flush()
                    out.extend(node)
                    i = end + 1
                    continue
        if ch in "hfm" and (i == 0 or not text[i - 1].isalnum()):
            url = _URL.match(text, i)
            if url:
                href = url.group(0).rstrip(_URL_TRAILING)
                if href:
                    flush()
                    out.text(href, [*marks, _link_mark(href)])
                    i += len(href)
                    continue
        if ch in _MARKERS and _is_opener(text, i):
            end = _find_closer(text, ch, i + 2)
            if end != -1 and text[i + 1 : end].strip(ch + " "):
                flush()
                out.extend(_parse_inline(text[i + 1 : end], [*marks, _MARKERS[ch]]))
                i = end + 1
                continue
        buf.append(ch)
        i += 1
    flush()
    return out.nodes


def _parse_bracket(body: str, marks: list[Node]) -> list[Node] | None:
    """``[~user]``, ``[text|target]`` or ``[url]``; None when the brackets are plain text."""
    if body.startswith("~") and len(body) > 1:
        return [_mention(body[1:])]
    bar = _scan(body, 0, lambda j: body[j] == "|")
    if bar != -1:
        label, target = body[:bar], body[bar + 1 :]
        href = target.split("|", 1)[0].strip()
        if not href:
            return None
        return _parse_inline(label, [*marks, _link_mark(href)]) or [
            _text(href, [*marks, _link_mark(href)])
        ]
    if _URL.fullmatch(body.strip()):
        href = body.strip()
        return [_text(href, [*marks, _link_mark(href)])]
    return None


# -- wiki markup -> ADF: blocks --------------------------------------------------------------


def _inline_lines(lines: list[str]) -> list[Node]:
    out = _Inline()
    for k, line in enumerate(lines):
        if k:
            out.add({"type": "hardBreak"})
        out.extend(_parse_inline(line))
    return out.nodes


def _parse_row(line: str) -> list[tuple[bool, str]]:
    cells: list[tuple[bool, str]] = []
    i, n = 0, len(line)
    # Without escapes, links or {{code}}, a cell simply ends at the next bar.
    plain = "\\" not in line and "[" not in line and "{{" not in line
    while i < n:
        if line.startswith("||", i):
            header, i = True, i + 2
        elif line[i] == "|":
            header, i = False, i + 1
        else:
            break
        j = line.find("|", i) if plain else _scan(line, i, lambda k: line[k] == "|")
        j = n if j == -1 else j
        content = line[i:j].strip()
        if j >= n and not content:
            break
        cells.append((header, content))
        i = j
    return cells


def _table(rows: list[list[tuple[bool, str]]]) -> Node:
    content = []
    for row in rows:
        cells = [
            {
                "type": "tableHeader" if header else "tableCell",
                "attrs": {},
                "content": [_paragraph(_parse_inline(text))],
            }
            for header, text in row
        ]
        content.append({"type": "tableRow", "content": cells})
    return {
        "type": "table",
        "attrs": {"isNumberColumnEnabled": False, "layout": "default"},
        "content": content,
    }


def _collect_macro(lines: list[str], i: int, name: str, first: str) -> tuple[list[str], int]:
    """Body lines of a block macro opened on line i (rest of that line in ``first``)."""
    closing = "{" + name + "}"
    end = first.find(closing)
    if end != -1:
        rest = first[end + len(closing) :]
        if rest.strip():
            lines.insert(i + 1, rest)
        return [first[:end]], i + 1
    body = [first] if first.strip() else []
    j = i + 1
    while j < len(lines):
        end = lines[j].find(closing)
        if end != -1:
            if lines[j][:end].strip():
                body.append(lines[j][:end])
            rest = lines[j][end + len(closing) :]
            if rest.strip():
                lines.insert(j + 1, rest)
            return body, j + 1
        body.append(lines[j])
        j += 1
    return body, j


def _macro_params(raw: str | None) -> tuple[str | None, dict[str, str]]:
    """``{code:java}`` -> ("java", {}); ``{panel:title=X|bgColor=Y}`` -> (None, {...})."""
    if not raw:
        return None, {}
    plain, params = None, {}
    for part in raw.split("|"):
        key, sep, value = part.partition("=")
        if sep:
            params[key.strip()] = value.strip()
        elif part.strip():
            plain = part.strip()
    return plain, params


def _parse_blocks(lines: list[str]) -> list[Node]:
    blocks: list[Node] = []
    para: list[str] = []
    lists: list[tuple[Node, str]] = []  # open list nodes with their marker char

    def end_paragraph() -> None:
        if para:
            blocks.append(_paragraph(_inline_lines(para)))
            para.clear()

    def end_lists() -> None:
        lists.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            end_paragraph()
            end_lists()
            i += 1
            continue
        macro = _BLOCK_MACRO.match(line)
        if macro:
            end_paragraph()
            end_lists()
            name, raw, first = macro.group(1), macro.group(2), macro.group(3)
            body, i = _collect_macro(lines, i, name, first)
            plain, params = _macro_params(raw)
            if name in ("code", "noformat"):
                node: Node = {"type": "codeBlock", "attrs": {}}
                if name == "code" and plain:
                    node["attrs"]["language"] = plain
                text = "\n".join(body).strip("\n")
                if text:
                    node["content"] = [{"type": "text", "text": text}]
                blocks.append(node)
            elif name == "quote":
                blocks.append(
                    {"type": "blockquote", "content": _parse_blocks(body) or [_paragraph([])]}
                )
            else:
                inner = _parse_blocks(body)
                if params.get("title"):
                    title = [_text(params["title"], [{"type": "strong"}])]
                    inner.insert(0, _paragraph(title))
                blocks.append(
                    {
                        "type": "panel",
                        "attrs": {"panelType": "info"},
                        "content": inner or [_paragraph([])],
                    }
                )
            continue
        heading = _HEADING.match(line)
        if heading:
            end_paragraph()
            end_lists()
            node = {"type": "heading", "attrs": {"level": int(heading.group(1))}}
            inline = _parse_inline(heading.group(2).strip())
            if inline:
                node["content"] = inline
            blocks.append(node)
            i += 1
            continue
        if _RULE.match(line):
            end_paragraph()
            end_lists()
            blocks.append({"type": "rule"})
            i += 1
            continue
        quote = _BQ.match(line)
        if quote:
            end_paragraph()
            end_lists()
            blocks.append(
                {"type": "blockquote", "content": [_paragraph(_parse_inline(quote.group(1)))]}
            )
            i += 1
            continue
        if line.lstrip().startswith("|"):
            end_paragraph()
            end_lists()
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                row = _parse_row(lines[i].strip())
                if row:
                    rows.append(row)
                i += 1
            if rows:
                blocks.append(_table(rows))
            continue
        item = _LIST_ITEM.match(line)
        if item:
            end_paragraph()
            markers = "*" if item.group(1) == "-" else item.group(1)
            _add_list_item(blocks, lists, markers, _parse_inline(item.group(2)))
            i += 1
            continue
        end_lists()
        para.append(line)
        i += 1
    end_paragraph()
    return blocks


def _add_list_item(
    blocks: list[Node], lists: list[tuple[Node, str]], markers: str, inline: list[Node]
) -> None:
    """Place one list item at depth len(markers), opening/closing nested lists as needed."""
    depth = len(markers)
    common = 0
    while common < min(len(lists), depth) and lists[common][1] == markers[common]:
        common += 1
    del lists[common:]
    while len(lists) < depth:
        level = len(lists)
        kind = "orderedList" if markers[level] == "#" else "bulletList"
        node: Node = {"type": kind, "content": []}
        if kind == "orderedList":
            node["attrs"] = {"order": 1}
        if not lists:
            blocks.append(node)
        else:
            parent_items = lists[-1][0]["content"]
            if not parent_items:
                parent_items.append({"type": "listItem", "content": [_paragraph([])]})
            parent_items[-1]["content"].append(node)
        lists.append((node, markers[level]))
    lists[-1][0]["content"].append({"type": "listItem", "content": [_paragraph(inline)]})


def wiki_to_adf(text: str | None) -> Node:
    """Wiki markup (Jira v2 / Server) -> an ADF document (Jira Cloud v3)."""
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return _doc(_parse_blocks(lines))


def wiki_blocks(lines: list[str]) -> list[Node]:
    """The block nodes of wiki-markup lines (``wiki_to_adf`` without the document)."""
    return _parse_blocks(list(lines))


def wiki_outline(lines: list[str]) -> list[tuple[int, Node]] | None:
    """Each top-level heading of wiki-markup lines as (line index, heading node).

    Without block macros every ``hN.`` line is a top-level heading and parsing starts
    afresh after it, so the blocks between two headings are ``wiki_blocks`` of the lines
    between them: a reader of one section parses only that section. None when a line
    opens a block macro (its body may hold or add heading lines): parse the whole text.
    """
    outline = []
    for index, line in enumerate(lines):
        if _BLOCK_MACRO.match(line):
            return None
        if _HEADING.match(line):
            outline.append((index, _parse_blocks([line])[0]))
    return outline


# -- ADF -> wiki markup --------------------------------------------------------------------


def _children(node: Any) -> list[Any]:
    content = node.get("content") if isinstance(node, dict) else None
    return content if isinstance(content, list) else []


def _attrs(node: Node) -> dict[str, Any]:
    attrs = node.get("attrs")
    return attrs if isinstance(attrs, dict) else {}


def _edge(node: Any, first: bool) -> str:
    """The character a neighbour shows next to this node once written as wiki markup.

    Marked text starts and ends with a marker, so it counts as punctuation; that is
    what decides whether a marker beside it could open or close, and so be escaped.
    """
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if kind == "text":
        text = str(node.get("text") or "")
        if not text:
            return ""
        ch = text[0] if first else text[-1]
        return ch if ch.isspace() or not node.get("marks") else "*"
    if kind == "hardBreak":
        return "\n"
    return "["


def _escape(text: str, prev: str, nxt: str, in_table: bool) -> str:
    """Backslash-escape what wiki markup would otherwise read as markup."""
    out = []
    full = prev + text + nxt
    base = len(prev)
    for k, ch in enumerate(text):
        pos = base + k
        if ch in _MARKERS and (_is_opener(full, pos) or _is_closer(full, pos)):
            out.append("\\" + ch)
        elif ch == "[" and _bracket_is_markup(full, pos):
            out.append("\\[")
        elif ch == "{" and re.match(
            r"\{(\{|[*_\-+^~]\}|color[:}]|code|noformat|quote|panel)", full[pos:]
        ):
            out.append("\\{")
        elif ch == "|" and in_table:
            out.append("\\|")
        elif ch == ":" and _URL.match(full, _scheme_start(full, pos)):
            out.append("\\:")  # keeps a URL that is not a link from becoming one
        else:
            out.append(ch)
    return "".join(out)


def _bracket_is_markup(full: str, pos: int) -> bool:
    end = _find_unescaped(full, "]", pos + 1)
    if end != -1:
        return _parse_bracket(full[pos + 1 : end], []) is not None
    return True  # the closing bracket may come with a later node: escape to be safe


def _scheme_start(full: str, colon: int) -> int:
    start = colon
    while start > 0 and full[start - 1].isalpha():
        start -= 1
    if start > 0 and full[start - 1].isalnum():
        return -1
    return start


def _wrap(core: str, marks: list[Node], prev: str, nxt: str) -> str:
    """Surround already-escaped ``core`` with the wiki markers of ``marks``."""
    tight = prev[-1:].isalnum() or nxt[:1].isalnum()
    for mark in sorted(marks, key=_mark_key, reverse=True):
        kind = mark.get("type")
        attrs = _attrs(mark)
        char = None
        if kind == "strong":
            char = "*"
        elif kind == "em":
            char = "_"
        elif kind == "strike":
            char = "-"
        elif kind == "underline":
            char = "+"
        elif kind == "subsup":
            char = "~" if attrs.get("type") == "sub" else "^"
        elif kind == "textColor" and attrs.get("color"):
            core = "{color:" + str(attrs["color"]) + "}" + core + "{color}"
        if char:
            core = ("{" + char + "}" + core + "{" + char + "}") if tight else (char + core + char)
    return core


def _inline_wiki(nodes: list[Any], *, in_table: bool = False, br: str = "\n") -> str:
    """ADF inline nodes -> wiki markup; links group neighbouring text with the same href."""
    nodes = [n for n in nodes if isinstance(n, dict)]
    parts: list[str] = []
    k = 0
    while k < len(nodes):
        node = nodes[k]
        href = _link_href(node)
        if href is not None:
            group = [node]
            while k + 1 < len(nodes) and _link_href(nodes[k + 1]) == href:
                k += 1
                group.append(nodes[k])
            parts.append(_link_wiki(group, href))
        else:
            prev = parts[-1][-1:] if parts and parts[-1] else ""
            nxt = _edge(nodes[k + 1], True) if k + 1 < len(nodes) else ""
            parts.append(_inline_node_wiki(node, prev, nxt, in_table, br))
        k += 1
    return "".join(parts)


def _link_href(node: Node) -> str | None:
    for mark in node.get("marks") or []:
        if isinstance(mark, dict) and mark.get("type") == "link":
            href = _attrs(mark).get("href")
            return str(href) if href else None
    return None


def _link_wiki(group: list[Node], href: str) -> str:
    stripped = []
    for node in group:
        copy = dict(node)
        copy["marks"] = [m for m in node.get("marks") or [] if m.get("type") != "link"]
        stripped.append(copy)
    label = "".join(str(n.get("text") or "") for n in stripped)
    if label == href and all(n.get("type") == "text" and not n["marks"] for n in stripped):
        return f"[{href}]"
    inner = _inline_wiki(stripped, in_table=True, br=" ").replace("]", "\\]")
    return f"[{inner}|{href}]"


def _inline_node_wiki(node: Node, prev: str, nxt: str, in_table: bool, br: str) -> str:
    kind = node.get("type")
    attrs = _attrs(node)
    if kind == "text":
        text = str(node.get("text") or "")
        marks = [m for m in node.get("marks") or [] if isinstance(m, dict)]
        if any(m.get("type") == "code" for m in marks):
            return "{{" + text + "}}" if text else ""
        core = text.strip()
        if not core or not marks:
            return _escape(text, prev, nxt, in_table)
        lead = text[: len(text) - len(text.lstrip())]
        trail = text[len(text.rstrip()) :]
        inner_prev = lead[-1:] or prev
        inner_next = trail[:1] or nxt
        body = _wrap(_escape(core, "", "", in_table), marks, inner_prev, inner_next)
        return lead + body + trail
    if kind == "hardBreak":
        return br
    if kind == "mention":
        ident = str(attrs.get("id") or "")
        if not ident:
            return str(attrs.get("text") or "")
        return f"[~accountid:{ident}]" if _ACCOUNT_ID.match(ident) else f"[~{ident}]"
    if kind == "emoji":
        return str(attrs.get("text") or attrs.get("shortName") or "")
    if kind in ("inlineCard", "blockCard", "embedCard"):
        url = attrs.get("url")
        return f"[{url}]" if url else ""
    if kind == "date":
        return _date_text(attrs.get("timestamp"))
    if kind == "status":
        return str(attrs.get("text") or "")
    if kind in ("media", "mediaInline"):
        name = attrs.get("alt") or attrs.get("id") or "attachment"
        return f"!{name}!"
    return _inline_wiki(_children(node), in_table=in_table, br=br) or str(node.get("text") or "")


def _date_text(timestamp: Any) -> str:
    try:
        return datetime.fromtimestamp(int(timestamp) / 1000, tz=UTC).date().isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return str(timestamp or "")


def _escape_line_starts(text: str) -> str:
    """Escape paragraph lines that wiki markup would read as a heading, list or table."""
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        if _HEADING.match(line) or _BQ.match(line):
            dot = line.index(".")
            line = line[:dot] + "\\" + line[dot:]
        elif _LIST_ITEM.match(line) or _RULE.match(line) or stripped.startswith("|"):
            lead = len(line) - len(stripped)
            line = line[:lead] + "\\" + line[lead:]
        out.append(line)
    return "\n".join(out)


def _blocks_wiki(nodes: list[Any]) -> list[str]:
    out = []
    for node in nodes:
        if isinstance(node, dict):
            rendered = _block_wiki(node)
            if rendered is not None:
                out.append(rendered)
    return out


def _block_wiki(node: Node) -> str | None:
    kind = node.get("type")
    attrs = _attrs(node)
    content = _children(node)
    if kind == "paragraph":
        return _escape_line_starts(_inline_wiki(content))
    if kind == "heading":
        level = attrs.get("level", 1)
        level = level if isinstance(level, int) and 1 <= level <= 6 else 1
        return f"h{level}. " + _inline_wiki(content, br=" ")
    if kind in ("bulletList", "orderedList", "taskList", "decisionList"):
        return "\n".join(_list_wiki(node, ""))
    if kind == "codeBlock":
        text = "".join(str(c.get("text") or "") for c in content if isinstance(c, dict))
        language = attrs.get("language")
        if language:
            return "{code:" + str(language) + "}\n" + text + "\n{code}"
        return "{noformat}\n" + text + "\n{noformat}"
    if kind == "blockquote":
        return "{quote}\n" + "\n\n".join(_blocks_wiki(content)) + "\n{quote}"
    if kind == "panel":
        return "{panel}\n" + "\n\n".join(_blocks_wiki(content)) + "\n{panel}"
    if kind == "rule":
        return "----"
    if kind == "table":
        return "\n".join(_row_wiki(row) for row in content if isinstance(row, dict))
    if kind in ("mediaSingle", "mediaGroup"):
        return " ".join(
            _inline_node_wiki(c, "", "", False, " ") for c in content if isinstance(c, dict)
        )
    if kind in ("expand", "nestedExpand"):
        title = attrs.get("title")
        inner = _blocks_wiki(content)
        return "\n\n".join(([f"*{title}*"] if title else []) + inner)
    if kind in ("blockCard", "embedCard"):
        return _inline_node_wiki(node, "", "", False, "\n")
    if content:
        if all(isinstance(c, dict) and c.get("type") in _INLINE_TYPES for c in content):
            return _escape_line_starts(_inline_wiki(content))
        return "\n\n".join(_blocks_wiki(content))
    if node.get("text"):
        return str(node["text"])
    return None


_INLINE_TYPES = {
    "text",
    "hardBreak",
    "mention",
    "emoji",
    "inlineCard",
    "date",
    "status",
    "mediaInline",
    "placeholder",
    "inlineExtension",
}


def _item_text(item: Node, in_table: bool = False) -> tuple[str, list[Node]]:
    """The first-line text of a list item and the nested lists below it."""
    parts, nested = [], []
    for child in _children(item):
        if not isinstance(child, dict):
            continue
        if child.get("type") in ("bulletList", "orderedList", "taskList", "decisionList"):
            nested.append(child)
        elif child.get("type") in _INLINE_TYPES:
            parts.append(_inline_wiki([child], in_table=in_table, br="\\\\ "))
        else:
            text = _inline_wiki(_children(child), in_table=in_table, br="\\\\ ")
            if child.get("type") == "codeBlock":
                text = "{{" + text + "}}"
            parts.append(text)
    return " \\\\ ".join(p for p in parts if p), nested


def _list_wiki(node: Node, prefix: str) -> list[str]:
    marker = "#" if node.get("type") == "orderedList" else "*"
    lines = []
    for item in _children(node):
        if not isinstance(item, dict):
            continue
        text, nested = _item_text(item)
        lines.append(f"{prefix}{marker} {text}")
        for sub in nested:
            lines.extend(_list_wiki(sub, prefix + marker))
    return lines


def _row_wiki(row: Node) -> str:
    out, last = [], "|"
    for cell in _children(row):
        if not isinstance(cell, dict):
            continue
        last = "||" if cell.get("type") == "tableHeader" else "|"
        texts = []
        for block in _children(cell):
            if not isinstance(block, dict):
                continue
            if block.get("type") in ("bulletList", "orderedList"):
                texts.extend(
                    _item_text(item, in_table=True)[0]
                    for item in _children(block)
                    if isinstance(item, dict)
                )
            else:
                texts.append(_inline_wiki(_children(block), in_table=True, br="\\\\ "))
        body = " \\\\ ".join(t for t in texts if t)
        out.append(last + (body if body else " "))
    return "".join(out) + last


def adf_to_wiki(doc: Any) -> str:
    """An ADF document (or any ADF node) -> wiki markup."""
    if not isinstance(doc, dict):
        return "" if doc is None else str(doc)
    if doc.get("type") == "doc":
        return "\n\n".join(b for b in _blocks_wiki(_children(doc)) if b is not None)
    return _block_wiki(doc) or ""


# -- ADF -> plain text --------------------------------------------------------------------


def _inline_text(nodes: list[Any]) -> str:
    parts = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        attrs = _attrs(node)
        if kind == "text":
            parts.append(str(node.get("text") or ""))
        elif kind == "hardBreak":
            parts.append("\n")
        elif kind == "mention":
            parts.append(str(attrs.get("text") or f"@{attrs.get('id', '')}"))
        elif kind == "emoji":
            parts.append(str(attrs.get("text") or attrs.get("shortName") or ""))
        elif kind in ("inlineCard", "blockCard", "embedCard"):
            parts.append(str(attrs.get("url") or ""))
        elif kind == "date":
            parts.append(_date_text(attrs.get("timestamp")))
        elif kind == "status":
            parts.append(str(attrs.get("text") or ""))
        elif kind in ("media", "mediaInline"):
            parts.append(str(attrs.get("alt") or ""))
        else:
            parts.append(_inline_text(_children(node)) or str(node.get("text") or ""))
    return "".join(parts)


def _block_lines(node: Any, indent: str = "") -> list[str]:
    if not isinstance(node, dict):
        return [str(node)] if isinstance(node, str) and node else []
    kind = node.get("type")
    content = _children(node)
    if kind in ("paragraph", "heading"):
        text = _inline_text(content)
        return [indent + line for line in text.split("\n")] if text else []
    if kind in ("bulletList", "orderedList", "taskList", "decisionList"):
        lines = []
        for number, item in enumerate(content, start=_attrs(node).get("order") or 1):
            marker = f"{number}. " if kind == "orderedList" else "- "
            sub = []
            for child in _children(item):
                sub.extend(_block_lines(child, indent + "  "))
            if isinstance(item, dict) and item.get("type") in ("taskItem", "decisionItem"):
                sub = [indent + "  " + line for line in _inline_text(_children(item)).split("\n")]
            if sub:
                sub[0] = indent + marker + sub[0][len(indent) + 2 :]
            lines.extend(sub)
        return lines
    if kind == "codeBlock":
        text = "".join(str(c.get("text") or "") for c in content if isinstance(c, dict))
        return [indent + line for line in text.split("\n")]
    if kind == "table":
        lines = []
        for row in content:
            cells = []
            for cell in _children(row):
                cell_lines = []
                for block in _children(cell):
                    cell_lines.extend(line.strip() for line in _block_lines(block))
                cells.append(" ".join(cell_lines))
            lines.append(indent + " | ".join(cells))
        return lines
    if kind == "rule":
        return []
    if kind in ("expand", "nestedExpand"):
        title = _attrs(node).get("title")
        lines = [indent + str(title)] if title else []
        for child in content:
            lines.extend(_block_lines(child, indent))
        return lines
    if kind == "text" or kind in _INLINE_TYPES:
        text = _inline_text([node])
        return [indent + text] if text else []
    if content and all(isinstance(c, dict) and c.get("type") in _INLINE_TYPES for c in content):
        text = _inline_text(content)
        return [indent + line for line in text.split("\n")] if text else []
    lines = []
    for child in content:
        lines.extend(_block_lines(child, indent))
    if not lines and node.get("text"):
        lines.append(indent + str(node["text"]))
    return lines


def adf_to_text(doc: Any) -> str:
    """ADF -> plain text: one line per paragraph, heading, list item or table row."""
    lines = [line.rstrip() for line in _block_lines(doc)]
    return "\n".join(line for line in lines if line.strip())


def wiki_to_text(text: str | None) -> str:
    """Wiki markup -> plain text (markup removed, words and structure kept)."""
    return adf_to_text(wiki_to_adf(text))


# -- normalisers used by the emulator and by ingestion -------------------------------------


def is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc"


def to_adf(value: Any) -> Node | None:
    """Any Jira rich-text value as ADF (the v3 representation); None stays None."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value if value.get("type") == "doc" else _doc([value])
    return wiki_to_adf(str(value))


def to_wiki(value: Any) -> str | None:
    """Any Jira rich-text value as wiki markup (the v2 representation); None stays None."""
    if value is None:
        return None
    if isinstance(value, dict):
        return adf_to_wiki(value)
    return str(value)


def to_text(value: Any) -> str:
    """Plain text of an ADF dict, a wiki-markup or plain string, a list of those, or None."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return adf_to_text(value)
    if isinstance(value, list):
        return "\n".join(t for t in (to_text(v) for v in value) if t)
    if isinstance(value, str):
        return wiki_to_text(value)
    return str(value)


# -- sections -------------------------------------------------------------------------------


@dataclass
class Section:
    """A heading and what follows it up to the next heading of the same or a higher level."""

    title: str
    level: int
    text: str = ""
    tables: list[list[list[str]]] = field(default_factory=list)


def _table_cells(table: Node) -> list[list[str]]:
    rows = []
    for row in _children(table):
        cells = []
        for cell in _children(row):
            cells.append(
                " ".join(line.strip() for b in _children(cell) for line in _block_lines(b))
            )
        rows.append(cells)
    return rows


def sections(value: Any) -> list[Section]:
    """The headed sections of a description (ADF or wiki markup), in document order."""
    doc = to_adf(value)
    if doc is None:
        return []
    found: list[Section] = []
    open_: list[tuple[Section, list[str]]] = []
    for node in _children(doc):
        if not isinstance(node, dict):
            continue
        if node.get("type") == "heading":
            level = _attrs(node).get("level") or 1
            while open_ and open_[-1][0].level >= level:
                section, lines = open_.pop()
                section.text = "\n".join(lines)
            section = Section(title=_inline_text(_children(node)).strip(), level=level)
            found.append(section)
            open_.append((section, []))
            continue
        for section, lines in open_:
            lines.extend(line.rstrip() for line in _block_lines(node) if line.strip())
            if node.get("type") == "table":
                section.tables.append(_table_cells(node))
    for section, lines in open_:
        section.text = "\n".join(lines)
    return found


def section(value: Any, title: str) -> Section | None:
    """The first section whose heading is ``title`` (case and a trailing colon ignored)."""
    wanted = title.strip().rstrip(":").strip().casefold()
    for candidate in sections(value):
        if candidate.title.rstrip(":").strip().casefold() == wanted:
            return candidate
    return None
