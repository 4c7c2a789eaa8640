"""Words and rich text: summaries, acceptance criteria, edge cases, code, OpenAPI specs.

Rich text is built once as a small block list and rendered three ways: ADF (Jira Cloud
v3), wiki markup (Jira Server, and Cloud changelog strings) and Confluence storage XHTML,
so the same content reads the same in every representation.
"""

from __future__ import annotations

import random
import re
from html import escape
from typing import Any

Block = tuple  # ("p", text) | ("h", level, text) | ("ul", [text]) | ("table", [hdr], [[cell]])

ASPECTS = (
    "self-service",
    "API",
    "reporting",
    "notifications",
    "admin tools",
    "bulk operations",
    "audit trail",
    "v2",
    "exports",
    "alerts",
    "search",
    "scheduling",
)
PARTNERS = (
    "Stripe",
    "Adyen",
    "Salesforce",
    "Segment",
    "Okta",
    "Twilio",
    "SAP",
    "Zendesk",
    "PagerDuty",
    "Snowflake",
    "HubSpot",
    "Braze",
)
SCREENS = ("overview", "details", "settings", "history", "checkout", "admin")
PERSONAS = (
    "customer",
    "support agent",
    "finance analyst",
    "account admin",
    "on-call engineer",
    "merchant",
    "operator",
)

UI_STORIES = (
    "Show {t} status on the {s} screen",
    "Add {t} filter to the {s} view",
    "Empty and error states for the {t} list",
    "Confirmation dialog before changing {t}",
    "Responsive layout for the {t} page",
    "Inline validation on the {t} form",
    "Pagination controls for {t} results",
)
BACKEND_STORIES = (
    "Persist {t} events",
    "Validate incoming {t} requests",
    "Expose {t} endpoint",
    "Backfill historical {t} data",
    "Add cursor pagination to {t} queries",
    "Emit audit events for {t}",
    "Cache {t} lookups",
    "Idempotency keys for {t} writes",
)
INTEGRATION_STORIES = (
    "Consume {p} webhooks for {t}",
    "Sync {t} to {p}",
    "Call {p} API when {t} change",
    "Publish {t} events to {p}",
)
BUG_SUMMARIES = (
    "{T} page shows a blank state after refresh",
    "Timeout when loading {t} for large accounts",
    "Duplicate {t} rows after retry",
    "Wrong currency symbol in {t} summary",
    "{T} list ignores the selected filter",
    "500 error when {t} request has no body",
)
RENAMED_SUFFIX = (" (v2)", " for enterprise accounts", " incl. audit", " behind feature flag")

AC_TEMPLATES = (
    "Given a {persona}, when they open {t}, then the latest state is shown within 2 seconds",
    "Given an invalid request, when it is submitted, then a 422 with a field error is returned",
    "Given {t} were changed, when the change is saved, then an audit entry records who and when",
    "Given more than 50 items, when the list loads, then results are paginated",
    "Given the partner is unavailable, when the call fails, then it is retried with backoff",
    "Given a {persona} without permission, when they try, then access is denied",
)
EDGE_CASES = (
    ("Empty list", "Show the empty state with a call to action"),
    ("Network timeout", "Show a retry banner, keep user input"),
    ("Concurrent edit", "Last write wins, show who changed it"),
    ("Very long names", "Truncate with an ellipsis and a tooltip"),
    ("Missing permission", "Hide the action, explain why on hover"),
    ("Right-to-left locale", "Mirror the layout"),
    ("Zero amount", "Disable the submit button"),
)
CODE_LINES = (
    "def {f}(request, *, {a}: str) -> dict:",
    '    """Handle {t} for the caller\'s account."""',
    "    record = repository.get({a})",
    "    if record is None:",
    '        raise NotFound(f"{t} {{{a}}} not found")',
    '    audit.emit("{f}", actor=request.user, subject={a})',
    "    return serialize(record)",
    "",
    "class {C}Service:",
    "    def __init__(self, client, clock):",
    "        self._client = client",
    "        self._clock = clock",
    "    def {f}(self, {a}):",
    '        payload = {{"id": {a}, "at": self._clock.now().isoformat()}}',
    '        return self._client.post("/{t}", json=payload, timeout=5)',
    'logger.info("{f} done", extra={{"{a}": {a}}})',
    "RETRY_DELAYS = (1, 2, 5, 10)",
)
UI_LINES = (
    "export function {C}Panel({{ items, onSelect }}: Props) {{",
    '  const [filter, setFilter] = useState<string>("");',
    '  if (!items.length) return <EmptyState title="No {t} yet" />;',
    "  return (",
    "    <List items={{items.filter(matches(filter))}} onSelect={{onSelect}} />",
    "  );",
    "}}",
    'const {f} = useQuery(["{t}"], () => api.get("/{t}"));',
    "<Button disabled={{!isValid}} onClick={{submit}}>Save</Button>",
)


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def camel(text: str) -> str:
    return "".join(w.capitalize() for w in re.split(r"[^A-Za-z0-9]+", text) if w)


# --- rich text -------------------------------------------------------------------------


def _adf_text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _adf_par(text: str) -> dict[str, Any]:
    return {"type": "paragraph", "content": [_adf_text(text)]}


def _adf_cell(kind: str, text: str) -> dict[str, Any]:
    return {"type": kind, "attrs": {}, "content": [_adf_par(text)]}


def to_adf(blocks: list[Block]) -> dict[str, Any]:
    """An Atlassian Document Format document, as Jira Cloud v3 returns rich text."""
    content: list[dict[str, Any]] = []
    for b in blocks:
        if b[0] == "p":
            content.append(_adf_par(b[1]))
        elif b[0] == "h":
            content.append(
                {"type": "heading", "attrs": {"level": b[1]}, "content": [_adf_text(b[2])]}
            )
        elif b[0] == "ul":
            content.append(
                {
                    "type": "bulletList",
                    "content": [{"type": "listItem", "content": [_adf_par(item)]} for item in b[1]],
                }
            )
        elif b[0] == "table":
            rows = [{"type": "tableRow", "content": [_adf_cell("tableHeader", h) for h in b[1]]}]
            rows += [
                {"type": "tableRow", "content": [_adf_cell("tableCell", c) for c in row]}
                for row in b[2]
            ]
            content.append(
                {
                    "type": "table",
                    "attrs": {"isNumberColumnEnabled": False, "layout": "default"},
                    "content": rows,
                }
            )
    return {"version": 1, "type": "doc", "content": content}


def to_wiki(blocks: list[Block]) -> str:
    """Jira wiki markup, as Jira Server (and Cloud v2) returns rich text."""
    out: list[str] = []
    for b in blocks:
        if b[0] == "p":
            out.append(b[1])
        elif b[0] == "h":
            out.append(f"h{b[1]}. {b[2]}")
        elif b[0] == "ul":
            out.append("\n".join(f"* {item}" for item in b[1]))
        elif b[0] == "table":
            lines = ["||" + "||".join(b[1]) + "||"]
            lines += ["|" + "|".join(row) + "|" for row in b[2]]
            out.append("\n".join(lines))
    return "\n\n".join(out)


def to_storage(blocks: list[Block]) -> str:
    """Confluence storage-format XHTML for the same blocks."""
    out: list[str] = []
    for b in blocks:
        if b[0] == "p":
            out.append(f"<p>{escape(b[1], quote=False)}</p>")
        elif b[0] == "h":
            out.append(f"<h{b[1]}>{escape(b[2], quote=False)}</h{b[1]}>")
        elif b[0] == "ul":
            out.append(
                "<ul>" + "".join(f"<li>{escape(i, quote=False)}</li>" for i in b[1]) + "</ul>"
            )
        elif b[0] == "table":
            head = "<tr>" + "".join(f"<th>{escape(h, quote=False)}</th>" for h in b[1]) + "</tr>"
            body = "".join(
                "<tr>" + "".join(f"<td>{escape(c, quote=False)}</td>" for c in row) + "</tr>"
                for row in b[2]
            )
            out.append(f"<table><tbody>{head}{body}</tbody></table>")
    return "".join(out)


# --- content pickers ----------------------------------------------------------------------


def acceptance_criteria(rng: random.Random, topic: str) -> list[str]:
    picks = rng.sample(AC_TEMPLATES, 3)
    return [p.format(t=topic, persona=rng.choice(PERSONAS)) for p in picks]


def edge_case_rows(rng: random.Random) -> list[list[str]]:
    return [list(row) for row in rng.sample(EDGE_CASES, rng.randint(3, 4))]


def code_lines(rng: random.Random, topic: str, n: int, ui: bool) -> list[str]:
    pool = UI_LINES if ui else CODE_LINES
    words = re.findall(r"[a-z]+", topic.lower()) or ["item"]
    f = (
        "_".join(words[:2])
        if not ui
        else camel(" ".join(words[:2]))[0].lower() + camel(" ".join(words[:2]))[1:]
    )
    fmt = {"f": f, "a": words[0] + "_id", "t": topic, "C": camel(topic)}
    start = rng.randrange(len(pool))
    return [pool[(start + i) % len(pool)].format(**fmt) for i in range(n)]


def openapi_spec(title: str, slug: str, version: str, drift: bool = False) -> str:
    """A small but valid OpenAPI 3 document for one feature's resource.

    ``drift`` adds what an unreviewed change typically adds: a new optional property
    and a new operation, and it narrows an enum.
    """
    resource = slug.replace("-", "_")
    status_enum = "[pending, active, closed]" if drift else "[pending, active, failed, closed]"
    extra_prop = (
        "        currency:\n          type: string\n          description: ISO 4217 code\n"
        if drift
        else ""
    )
    extra_path = (
        (
            f"  /{slug}/{{id}}/cancel:\n"
            "    post:\n"
            f"      operationId: cancel_{resource}\n"
            "      responses:\n"
            "        '202':\n"
            "          description: Accepted\n"
        )
        if drift
        else ""
    )
    return (
        "openapi: 3.0.3\n"
        "info:\n"
        f"  title: {title}\n"
        f"  version: {version}\n"
        "paths:\n"
        f"  /{slug}:\n"
        "    get:\n"
        f"      operationId: list_{resource}\n"
        "      parameters:\n"
        "        - name: cursor\n"
        "          in: query\n"
        "          schema:\n"
        "            type: string\n"
        "      responses:\n"
        "        '200':\n"
        "          description: A page of results\n"
        "          content:\n"
        "            application/json:\n"
        "              schema:\n"
        f"                $ref: '#/components/schemas/{camel(slug)}Page'\n"
        "    post:\n"
        f"      operationId: create_{resource}\n"
        "      requestBody:\n"
        "        required: true\n"
        "        content:\n"
        "          application/json:\n"
        "            schema:\n"
        f"              $ref: '#/components/schemas/{camel(slug)}'\n"
        "      responses:\n"
        "        '201':\n"
        "          description: Created\n"
        f"  /{slug}/{{id}}:\n"
        "    get:\n"
        f"      operationId: get_{resource}\n"
        "      parameters:\n"
        "        - name: id\n"
        "          in: path\n"
        "          required: true\n"
        "          schema:\n"
        "            type: string\n"
        "      responses:\n"
        "        '200':\n"
        "          description: OK\n"
        "        '404':\n"
        "          description: Not found\n"
        f"{extra_path}"
        "components:\n"
        "  schemas:\n"
        f"    {camel(slug)}:\n"
        "      type: object\n"
        "      required: [id, status]\n"
        "      properties:\n"
        "        id:\n"
        "          type: string\n"
        "        status:\n"
        "          type: string\n"
        f"          enum: {status_enum}\n"
        "        created_at:\n"
        "          type: string\n"
        "          format: date-time\n"
        f"{extra_prop}"
        f"    {camel(slug)}Page:\n"
        "      type: object\n"
        "      properties:\n"
        "        items:\n"
        "          type: array\n"
        "          items:\n"
        f"            $ref: '#/components/schemas/{camel(slug)}'\n"
        "        next_cursor:\n"
        "          type: string\n"
        "          nullable: true\n"
    )
