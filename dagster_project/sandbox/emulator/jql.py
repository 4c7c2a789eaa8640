"""The subset of JQL the Jira emulator answers, with Jira's own error messages.

Supported: clauses on ``project``, ``key``/``issuekey``/``issue``/``id``, ``created``
(``createdDate``) and ``updated`` (``updatedDate``); operators ``=``, ``!=``, ``>``,
``>=``, ``<``, ``<=``, ``in``, ``not in``; ``AND``, ``OR``, ``NOT`` and parentheses;
``ORDER BY`` any of those fields ``ASC``/``DESC``. Dates are ``yyyy/MM/dd HH:mm``,
``yyyy-MM-dd HH:mm``, date-only, a period relative to now (``-5d``, ``-2w 3d``,
``-90m``) or ``now()``, read in the searching user's time zone (the emulator's user is
UTC). Anything else is answered with 400 and a message naming what is not supported,
never silently ignored.

Issues are matched on small index entries (``IssueMeta``), so a search never parses
the full issue objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


class JqlError(ValueError):
    """A query Jira would refuse with 400; ``str(err)`` is Jira's errorMessages entry."""


# An issue's index entry: key, id (int), project (key, upper case), num (the number in
# the key), created and updated (epoch milliseconds, UTC).
IssueMeta = dict[str, Any]


FIELD_ALIASES = {
    "project": "project",
    "key": "key",
    "issuekey": "key",
    "issue": "key",
    "id": "key",
    "created": "created",
    "createddate": "created",
    "updated": "updated",
    "updateddate": "updated",
}
VALID_OPERATORS = (
    "The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN',"
    " 'IS' and 'IS NOT'."
)
DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
_PERIOD = re.compile(r"^([-+]?)\s*((?:\d+\s*[wdhm]\s*)+)$")
_PERIOD_PART = re.compile(r"(\d+)\s*([wdhm])")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60}

# -- tokens ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<open_string>["'])
      | (?P<op>!=|>=|<=|!~|=|>|<|~|!)
      | (?P<punct>[(),])
      | (?P<word>[^\s=!<>~(),"']+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # string | op | punct | word | end
    text: str
    pos: int  # 1-based character position, as Jira reports it

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


def tokenize(jql: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(jql):
        if not jql[pos:].strip():
            break
        match = _TOKEN.match(jql, pos)
        assert match is not None  # the word class takes any other character
        kind = match.lastgroup or "word"
        text = match.group(kind)
        start = match.start(kind) + 1
        if kind == "open_string":
            rest = jql[match.start(kind) :]
            raise JqlError(
                f"Error in the JQL Query: The quoted string {rest!r} has not been completed."
                f" (line 1, character {start})"
            )
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append(Token(kind, text, start))
        pos = match.end()
    tokens.append(Token("end", "", len(jql) + 1))
    return tokens


# -- syntax tree ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Clause:
    field: str  # canonical: project | key | created | updated
    name: str  # as written
    op: str  # = != > >= < <= in "not in"
    values: tuple[str, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


Node = Clause | BoolOp | Not


@dataclass(frozen=True)
class Query:
    where: Node | None
    order_by: tuple[tuple[str, bool], ...]  # (field, descending)

    @property
    def bounded(self) -> bool:
        """Jira Cloud's enhanced search refuses a query with no restriction at all."""
        return self.where is not None


class _Parser:
    def __init__(self, jql: str, known: Collection[str]):
        self.tokens = tokenize(jql)
        self.known = {k.casefold() for k in known}
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def error(self, expected: str, token: Token) -> JqlError:
        got = "the end of the query" if token.kind == "end" else f"'{token.text}'"
        where = "" if token.kind == "end" else f" (line 1, character {token.pos})"
        return JqlError(f"Error in the JQL Query: Expecting {expected} but got {got}.{where}")

    def parse(self) -> Query:
        where = None
        if not (self.peek().upper == "ORDER" or self.peek().kind == "end"):
            where = self.or_expr()
        order_by = self.order_by()
        token = self.peek()
        if token.kind != "end":
            raise self.error("either 'OR' or 'AND'", token)
        return Query(where, tuple(order_by))

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while self.peek().upper == "OR" or self.peek().text == "||":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def and_expr(self) -> Node:
        parts = [self.not_expr()]
        while self.peek().upper == "AND" or self.peek().text == "&&":
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def not_expr(self) -> Node:
        token = self.peek()
        if token.upper == "NOT" or token.text == "!":
            self.take()
            return Not(self.not_expr())
        if token.text == "(" and token.kind == "punct":
            self.take()
            node = self.or_expr()
            closing = self.take()
            if closing.text != ")":
                raise self.error("')'", closing)
            return node
        return self.clause()

    def field_name(self) -> tuple[str, str]:
        token = self.take()
        if token.kind not in ("word", "string"):
            raise self.error("a field name", token)
        canonical = FIELD_ALIASES.get(token.text.lower())
        if canonical is None and token.text.casefold() in self.known:
            raise JqlError(
                f"The sandbox answers a subset of JQL without the field '{token.text}'"
                " (it supports project, key, issuekey, id, created and updated)."
            )
        if canonical is None:
            raise JqlError(
                f"Field '{token.text}' does not exist or you do not have permission to view it."
            )
        return canonical, token.text

    def clause(self) -> Clause:
        field, name = self.field_name()
        token = self.take()
        if token.upper == "NOT" and self.peek().upper == "IN":
            self.take()
            return Clause(field, name, "not in", self.value_list())
        if token.upper == "IN":
            return Clause(field, name, "in", self.value_list())
        if token.kind == "op" and token.text not in ("~", "!~", "!"):
            return Clause(field, name, token.text, (self.value(),))
        if token.kind == "op" or token.upper in ("IS", "WAS", "CHANGED"):
            raise JqlError(
                f"The operator '{token.text.upper()}' is not supported by the sandbox for the"
                f" '{name}' field."
            )
        got = "the end of the query" if token.kind == "end" else f"'{token.text}'"
        raise JqlError(
            f"Error in the JQL Query: Expecting operator but got {got}. {VALID_OPERATORS}"
            f" (line 1, character {token.pos})"
        )

    def value(self) -> str:
        token = self.take()
        if token.kind in ("string", "word"):
            if token.kind == "word" and self.peek().text == "(":
                self.take()
                closing = self.take()
                if closing.text != ")":
                    raise self.error("')'", closing)
                return token.text + "()"
            return token.text
        raise self.error("either a value, list or function", token)

    def value_list(self) -> tuple[str, ...]:
        opening = self.take()
        if opening.text != "(":
            raise self.error("'('", opening)
        values = [self.value()]
        while self.peek().text == ",":
            self.take()
            values.append(self.value())
        closing = self.take()
        if closing.text != ")":
            raise self.error("')'", closing)
        return tuple(values)

    def order_by(self) -> list[tuple[str, bool]]:
        if self.peek().upper != "ORDER":
            return []
        self.take()
        by = self.take()
        if by.upper != "BY":
            raise self.error("'by'", by)
        order = []
        while True:
            field, name = self.field_name()
            descending = False
            if self.peek().upper in ("ASC", "DESC"):
                descending = self.take().upper == "DESC"
            order.append((field, descending))
            if self.peek().text != ",":
                return order
            self.take()


def parse(jql: str, known_fields: Collection[str] = ()) -> Query:
    """Parse a JQL string; raises JqlError with Jira's message on what it cannot read.

    ``known_fields`` (clause names of the instance's fields) tells a real field the
    sandbox does not filter on apart from one that does not exist at all.
    """
    return _Parser(jql or "", known_fields).parse()


# -- values ---------------------------------------------------------------------------------


def date_value(text: str, field: str, now: datetime) -> int:
    """A JQL date literal -> epoch milliseconds (user time zone: UTC)."""
    raw = text.strip()
    if raw.lower() in ("now()", "now"):
        return int(now.timestamp() * 1000)
    for fmt in DATE_FORMATS:
        try:
            moment = datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return int(moment.timestamp() * 1000)
    period = _PERIOD.match(raw)
    if period:
        seconds = sum(int(n) * _UNITS[u] for n, u in _PERIOD_PART.findall(period.group(2)))
        sign = -1 if period.group(1) == "-" else 1
        return int((now + timedelta(seconds=sign * seconds)).timestamp() * 1000)
    raise JqlError(
        f"Date value '{text}' for field '{field}' is invalid. Valid formats include:"
        " 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period"
        " format e.g. '-5d', '4w 2d'."
    )


_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)-(\d+)$")


def key_order(key: str) -> tuple[str, int]:
    match = _KEY.match(key)
    if not match:
        return key.upper(), 0
    return match.group(1).upper(), int(match.group(2))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


@dataclass
class Catalog:
    """What a strict query is validated against (Jira answers 400 for unknown values)."""

    projects: dict[str, str]  # lower-cased key, name or id -> project key
    keys: Callable[[str], int | None]  # issue key or id -> issue id, None when unknown


def compile_query(
    query: Query, catalog: Catalog, *, now: datetime, strict: bool = True
) -> tuple[Callable[[IssueMeta], bool], list[str]]:
    """A predicate over index entries for ``query.where``, and the warnings of a lax query.

    With ``strict`` (``validateQuery=true``, Cloud always) unknown projects and issue keys
    raise JqlError as Jira does; otherwise they match nothing and come back as warnings.
    """
    warnings: list[str] = []

    def compile_node(node: Node) -> Callable[[IssueMeta], bool]:
        if isinstance(node, Not):
            inner = compile_node(node.part)
            return lambda m: not inner(m)
        if isinstance(node, BoolOp):
            parts = [compile_node(p) for p in node.parts]
            if node.op == "and":
                return lambda m: all(p(m) for p in parts)
            return lambda m: any(p(m) for p in parts)
        return compile_clause(node)

    def unknown(message: str) -> None:
        if strict:
            raise JqlError(message)
        warnings.append(message)

    def compile_clause(clause: Clause) -> Callable[[IssueMeta], bool]:
        op = clause.op
        if clause.field in ("created", "updated"):
            if op in ("in", "not in"):
                stamps = {date_value(v, clause.name, now) for v in clause.values}
                attr = clause.field
                negate = op == "not in"
                return lambda m: (m[attr] in stamps) != negate
            stamp = date_value(clause.values[0], clause.name, now)
            compare = _COMPARE[op]
            attr = clause.field
            return lambda m: compare(m[attr], stamp)

        if op not in ("=", "!=", "in", "not in"):
            raise JqlError(
                f"The operator '{op}' is not supported by the sandbox for the '{clause.name}'"
                " field."
            )
        negate = op in ("!=", "not in")
        if clause.field == "project":
            wanted = set()
            for value in clause.values:
                key = catalog.projects.get(value.lower())
                if key is None:
                    unknown(f"The value '{value}' does not exist for the field '{clause.name}'.")
                else:
                    wanted.add(key)
            return lambda m: (m["project"] in wanted) != negate

        ids = set()
        for value in clause.values:
            issue_id = catalog.keys(value)
            if issue_id is None:
                unknown(f"An issue with key '{value}' does not exist for field '{clause.name}'.")
            else:
                ids.add(issue_id)
        return lambda m: (m["id"] in ids) != negate

    if query.where is None:
        return (lambda m: True), warnings
    return compile_node(query.where), warnings


def sort_metas(metas: list[IssueMeta], order_by: tuple[tuple[str, bool], ...]) -> list[IssueMeta]:
    """Sort by ORDER BY (without one: key descending, newest first), ties broken by id.

    The id tie-break makes the order total, so consecutive pages never repeat or drop
    an issue.
    """
    ordered = sorted(metas, key=lambda m: m["id"])
    for field, descending in reversed(order_by or (("key", True),)):
        if field == "key":
            ordered.sort(key=lambda m: (m["project"], m["num"]), reverse=descending)
        else:
            ordered.sort(key=lambda m, f=field: m[f], reverse=descending)
    return ordered
