"""A subset of Confluence Query Language (CQL), enough for incremental ingestion.

Supported, case-insensitively for keywords and field names::

    space = DOC            space in (DOC, OPS)        space.key != OPS
    type = page            type in (page, blogpost)
    label = prd            label in ("prd", "test-plan")     label not in (draft)
    title = "Exact"        title ~ "payments"         title ~ "pay*"     title !~ "draft"
    text ~ "PAY-3"         (title and body text, word by word)
    id = 123               id in (1, 2)               content = 123
    parent = 123           ancestor = 123
    lastmodified >= "2026/03/01 10:00"     created < "2026-03-01"     (also =, !=, >, <=)
    a AND b OR NOT (c OR d)                ORDER BY lastmodified DESC, title

AND binds tighter than OR; NOT binds tightest. Dates are minute (``yyyy/MM/dd HH:mm``)
or day (``yyyy/MM/dd``) literals, ``-`` or ``/`` separated, read in the searching user's
time zone (UTC in the sandbox), as Confluence does. ``>``, ``>=``, ``<``, ``<=`` compare
with the instant the literal starts at; ``=`` and ``!=`` test the whole minute or day.

Documents are plain mappings (the emulator's page index): ``id``, ``space``, ``type``,
``title``, ``labels``, ``lastmodified`` and ``created`` (epoch seconds), ``parent``,
``ancestors``. ``text ~`` asks the caller for the document's text, so bodies are read
only for queries that need them.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

Doc = Mapping[str, Any]
TextOf = Callable[[Doc], str]


class CqlError(ValueError):
    """A query outside the supported subset, or malformed: the server answers 400."""


# -- tokens -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>!=|>=|<=|!~|=|~|>|<)
    | (?P<punct>[(),])
    | (?P<word>[^\s"'()=!~<>,]+)
    )""",
    re.VERBOSE,
)

KEYWORDS = {"and", "or", "not", "in", "order", "by", "asc", "desc"}


@dataclass(frozen=True)
class Token:
    kind: str  # string | op | punct | word | end
    text: str
    pos: int

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise CqlError(f"unexpected character {text[pos:].lstrip()[:1]!r} at {pos}")
        kind = m.lastgroup or "word"
        value = m.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append(Token(kind, value, m.start(kind)))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# -- syntax tree --------------------------------------------------------------------------


@dataclass(frozen=True)
class Clause:
    field: str
    op: str  # = != ~ !~ > >= < <= in "not in"
    values: tuple[Any, ...]

    def matches(self, doc: Doc, text_of: TextOf | None) -> bool:
        return FIELDS[self.field].test(self, doc, text_of)


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]

    def matches(self, doc: Doc, text_of: TextOf | None) -> bool:
        return all(p.matches(doc, text_of) for p in self.parts)


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]

    def matches(self, doc: Doc, text_of: TextOf | None) -> bool:
        return any(p.matches(doc, text_of) for p in self.parts)


@dataclass(frozen=True)
class Not:
    part: Node

    def matches(self, doc: Doc, text_of: TextOf | None) -> bool:
        return not self.part.matches(doc, text_of)


Node = Clause | And | Or | Not


@dataclass(frozen=True)
class Query:
    """A parsed CQL query: ``where`` (None matches everything) and ``order_by``."""

    where: Node | None
    order_by: tuple[tuple[str, bool], ...] = ()  # (field, descending)
    text: str = ""

    def matches(self, doc: Doc, text_of: TextOf | None = None) -> bool:
        return self.where is None or self.where.matches(doc, text_of)

    def sort(self, docs: Sequence[Doc]) -> list[Doc]:
        """Stable sort by ORDER BY keys; documents without a value sort last."""
        out = list(docs)
        for name, descending in reversed(self.order_by):
            key = FIELDS[name].sort_key
            present = [d for d in out if key(d) is not None]
            absent = [d for d in out if key(d) is None]
            present.sort(key=key, reverse=descending)  # type: ignore[arg-type]
            out = present + absent
        return out


# -- fields -------------------------------------------------------------------------------


def _fold(value: Any) -> str:
    return str(value).casefold()


def _words(text: str) -> list[str]:
    return re.findall(r"\w+(?:[-.]\w+)*", text.casefold())


def _contains(haystack: str, phrase: str) -> bool:
    """Lucene-like ``~``: every term of the phrase matches a word (``*``/``?`` wildcards)."""
    words = _words(haystack)
    terms = [t for t in re.split(r"\s+", phrase.casefold().strip()) if t]
    if not terms:
        return False
    for term in terms:
        if any(ch in term for ch in "*?"):
            if not any(fnmatch.fnmatchcase(w, term) for w in words):
                return False
        elif term not in words:
            # a multi-word-ish term such as "PAY-3" also matches inside punctuation
            if not re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", haystack.casefold()):
                return False
    return True


@dataclass(frozen=True)
class Field:
    name: str
    ops: frozenset[str]
    test: Callable[[Clause, Doc, TextOf | None], bool]
    sort_key: Callable[[Doc], Any]
    kind: str = "text"  # text | date


def _scalar_field(key: str, normalize: Callable[[Any], str] = _fold) -> Callable[..., bool]:
    def test(clause: Clause, doc: Doc, _text_of: TextOf | None) -> bool:
        value = doc.get(key)
        hit = value is not None and normalize(value) in {normalize(v) for v in clause.values}
        return not hit if clause.op in ("!=", "not in") else hit

    return test


def _label_name(value: Any) -> str:
    name = _fold(value)
    return name.split(":", 1)[1] if name.startswith(("global:", "my:", "team:")) else name


def _labels_test(clause: Clause, doc: Doc, _text_of: TextOf | None) -> bool:
    labels = {_label_name(x) for x in doc.get("labels") or ()}
    hit = bool(labels & {_label_name(v) for v in clause.values})
    return not hit if clause.op in ("!=", "not in") else hit


def _ancestor_test(clause: Clause, doc: Doc, _text_of: TextOf | None) -> bool:
    ancestors = {str(a) for a in doc.get("ancestors") or ()}
    hit = bool(ancestors & {str(v) for v in clause.values})
    return not hit if clause.op in ("!=", "not in") else hit


def _title_test(clause: Clause, doc: Doc, _text_of: TextOf | None) -> bool:
    title = str(doc.get("title") or "")
    if clause.op in ("~", "!~"):
        hit = _contains(title, str(clause.values[0]))
        return not hit if clause.op == "!~" else hit
    hit = _fold(title) in {_fold(v) for v in clause.values}
    return not hit if clause.op in ("!=", "not in") else hit


def _text_test(clause: Clause, doc: Doc, text_of: TextOf | None) -> bool:
    text = str(doc.get("title") or "") + "\n" + (text_of(doc) if text_of else "")
    hit = _contains(text, str(clause.values[0]))
    return not hit if clause.op == "!~" else hit


def _date_field(key: str) -> Callable[..., bool]:
    def test(clause: Clause, doc: Doc, _text_of: TextOf | None) -> bool:
        value = doc.get(key)
        start, span = clause.values[0]
        if value is None:
            return clause.op == "!="
        return {
            "=": start <= value < start + span,
            "!=": not (start <= value < start + span),
            ">": value > start,
            ">=": value >= start,
            "<": value < start,
            "<=": value <= start,
        }[clause.op]

    return test


def _id_key(doc: Doc) -> Any:
    value = str(doc.get("id", ""))
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


EQ = frozenset({"=", "!=", "in", "not in"})
DATE_OPS = frozenset({"=", "!=", ">", ">=", "<", "<="})

FIELDS: dict[str, Field] = {}
for _field in (
    Field("space", EQ, _scalar_field("space"), lambda d: _fold(d.get("space") or "")),
    Field("type", EQ, _scalar_field("type"), lambda d: d.get("type")),
    Field("label", EQ, _labels_test, lambda d: None),
    Field("title", EQ | {"~", "!~"}, _title_test, lambda d: _fold(d.get("title") or "")),
    Field("text", frozenset({"~", "!~"}), _text_test, lambda d: None),
    Field("id", EQ, _scalar_field("id", str), _id_key),
    Field("parent", EQ, _scalar_field("parent", str), lambda d: d.get("parent")),
    Field("ancestor", EQ, _ancestor_test, lambda d: None),
    Field(
        "lastmodified",
        DATE_OPS,
        _date_field("lastmodified"),
        lambda d: d.get("lastmodified"),
        "date",
    ),
    Field("created", DATE_OPS, _date_field("created"), lambda d: d.get("created"), "date"),
):
    FIELDS[_field.name] = _field
ALIASES = {"space.key": "space", "content": "id", "content.id": "id"}
SORTABLE = {"lastmodified", "created", "title", "id", "space", "type", "parent"}


def field_name(word: str) -> str:
    name = word.casefold()
    name = ALIASES.get(name, name)
    if name not in FIELDS:
        raise CqlError(f"unsupported field {word!r}")
    return name


# -- dates --------------------------------------------------------------------------------

_DATE = re.compile(r"^(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?:[ T](\d{1,2}):(\d{2}))?$")


def parse_date(text: str, tz: tzinfo = UTC) -> tuple[float, float]:
    """A CQL date literal as (epoch seconds of its start, span in seconds)."""
    m = _DATE.match(text.strip())
    if not m:
        raise CqlError(f"invalid date {text!r}: expected yyyy/MM/dd or yyyy/MM/dd HH:mm")
    year, month, day, hour, minute = m.groups()
    try:
        start = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), tzinfo=tz
        )
    except ValueError as exc:
        raise CqlError(f"invalid date {text!r}: {exc}") from exc
    span = timedelta(minutes=1) if hour is not None else timedelta(days=1)
    return start.timestamp(), span.total_seconds()


# -- parser -------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, tz: tzinfo):
        self.text = text
        self.tz = tz
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect_punct(self, char: str) -> None:
        if self.tok.kind != "punct" or self.tok.text != char:
            raise CqlError(f"expected {char!r} at {self.tok.pos}, found {self.tok.text!r}")
        self.take()

    def query(self) -> Query:
        where = None
        if not self.tok.is_word("order"):
            where = self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.tok.is_word("order"):
            self.take()
            if not self.tok.is_word("by"):
                raise CqlError(f"expected BY after ORDER at {self.tok.pos}")
            self.take()
            while True:
                word = self.take()
                if word.kind != "word":
                    raise CqlError(f"expected a field after ORDER BY at {word.pos}")
                name = field_name(word.text)
                if name not in SORTABLE:
                    raise CqlError(f"cannot order by {word.text!r}")
                descending = False
                if self.tok.is_word("asc", "desc"):
                    descending = self.take().text.lower() == "desc"
                order.append((name, descending))
                if self.tok.kind == "punct" and self.tok.text == ",":
                    self.take()
                    continue
                break
        if self.tok.kind != "end":
            raise CqlError(f"unexpected {self.tok.text!r} at {self.tok.pos}")
        return Query(where=where, order_by=tuple(order), text=self.text)

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while self.tok.is_word("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self) -> Node:
        parts = [self.not_expr()]
        while self.tok.is_word("and"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def not_expr(self) -> Node:
        if self.tok.is_word("not"):
            self.take()
            return Not(self.not_expr())
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.take()
            node = self.or_expr()
            self.expect_punct(")")
            return node
        return self.clause()

    def value(self) -> str:
        tok = self.take()
        if tok.kind == "string" or (tok.kind == "word" and tok.text.lower() not in KEYWORDS):
            if tok.kind == "word" and self.tok.kind == "punct" and self.tok.text == "(":
                raise CqlError(f"CQL functions are not supported ({tok.text}())")
            return tok.text
        raise CqlError(f"expected a value at {tok.pos}, found {tok.text or 'end of query'!r}")

    def clause(self) -> Clause:
        word = self.take()
        if word.kind != "word" or word.text.lower() in KEYWORDS:
            raise CqlError(f"expected a field at {word.pos}, found {word.text or 'end'!r}")
        name = field_name(word.text)
        spec = FIELDS[name]
        if self.tok.is_word("not"):
            self.take()
            if not self.tok.is_word("in"):
                raise CqlError(f"expected IN after NOT at {self.tok.pos}")
            op = "not in"
        elif self.tok.is_word("in"):
            op = "in"
        elif self.tok.kind == "op":
            op = self.tok.text
        else:
            raise CqlError(f"expected an operator after {word.text!r} at {self.tok.pos}")
        self.take()
        if op not in spec.ops:
            raise CqlError(f"operator {op!r} is not supported for field {word.text!r}")
        if op in ("in", "not in"):
            self.expect_punct("(")
            values = [self.value()]
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.take()
                values.append(self.value())
            self.expect_punct(")")
        else:
            values = [self.value()]
        if spec.kind == "date":
            return Clause(name, op, tuple(parse_date(v, self.tz) for v in values))
        return Clause(name, op, tuple(values))


def parse(text: str, tz: tzinfo = UTC) -> Query:
    """Parse a CQL string; raises CqlError naming the problem and its position."""
    if not text or not text.strip():
        raise CqlError("CQL query parameter is required but was blank")
    return _Parser(text, tz).query()
