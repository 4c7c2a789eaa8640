"""HTML reports: self-contained pages (inline CSS, no scripts), autoescaped.

Jira and Confluence text is untrusted (a summary can hold ``<script>``): every value
is escaped by Jinja2's autoescaping, which is off by default and turned on here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def safe_url(value: Any) -> str | None:
    """A link target only when it is an http(s) URL: a ``javascript:`` or ``data:`` URL
    from a source never becomes a link."""
    text = str(value or "").strip()
    return text if text.lower().startswith(("https://", "http://")) else None


_env.filters["safe_url"] = safe_url


def render(template: str, **context: Any) -> str:
    context.setdefault("generated_at", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    return _env.get_template(template).render(**context)


def write_report(path: Path, template: str, **context: Any) -> Path:
    """Render and write atomically, so a reader never opens a half-written page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(render(template, **context), encoding="utf-8")
    tmp.replace(path)
    return path


def copy_atomically(source: Path, target: Path) -> Path:
    """``target`` becomes a copy of ``source`` in one rename: a reader of a stable name
    (latest.html) never sees half a file."""
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_bytes(source.read_bytes())
    tmp.replace(target)
    return target
