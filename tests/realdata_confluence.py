"""Captured real Confluence payloads (shared/fixtures/real/confluence) as a format-v1 dataset.

The captures come from three public projects and were taken at different times and
with different expansions, so one content id may appear several times: as a search
stub, as a historical version (``?status=historical&version=N``) and as the current
page. The conversion keeps every payload as captured and only decides where each goes:

* the capture with the highest version number of an id is the page object (its
  ``status`` set to ``current``: a capture fetched with ``status=historical`` of a page
  whose history says ``latest`` is still the page as it stands);
* lower-numbered captures of the same id become ``page_versions.jsonl`` records;
* captures without a ``version`` object (search stubs, space listings) are left out:
  format v1 pages carry their version;
* spaces come from the captured ``/space`` answer.

Attachments and blog posts are kept as content: ingestion must leave them out itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PERCEVAL_CONTENT = (
    "perceval_server_confluence_content_1_v1.json",
    "perceval_server_confluence_content_1_v2.json",
    "perceval_server_confluence_content_1_v3.json",
    "perceval_server_confluence_content_2_v1.json",
    "perceval_server_confluence_content_3.json",
    "perceval_server_confluence_content_att_v1.json",
)
MCP_MOCKS = "mcpatlassian_cloud_sanitized_v1_v2_mocks.json"
AIRBYTE_RECORDS = "airbyte_cloud_v1_content_records.jsonl"


@dataclass
class RealConfluence:
    """What the dataset holds, for the tests' expectations."""

    root: Path
    content: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> current object
    versions: dict[str, list[int]] = field(default_factory=dict)  # id -> numbers on file
    spaces: list[str] = field(default_factory=list)

    @property
    def pages(self) -> dict[str, dict[str, Any]]:
        return {i: c for i, c in self.content.items() if c.get("type") == "page"}


def _captures(real: Path) -> list[dict[str, Any]]:
    base = real / "confluence"
    found = [
        json.loads((base / "gpl3_perceval" / name).read_text(encoding="utf-8"))
        for name in PERCEVAL_CONTENT
    ]
    for line in (base / AIRBYTE_RECORDS).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("stream") in ("pages", "blog_posts"):
            found.append(record["data"])
    mocks = json.loads((base / MCP_MOCKS).read_text(encoding="utf-8"))
    found.append(mocks["MOCK_PAGE_RESPONSE"])
    found.extend(mocks["MOCK_PAGES_FROM_SPACE_RESPONSE"])
    return found


def _storage(content: dict[str, Any]) -> str | None:
    storage = (content.get("body") or {}).get("storage") or {}
    return storage.get("value")


def write_dataset(real: Path, root: Path) -> RealConfluence:
    """Write the captured payloads under ``root`` as a dataset the emulator serves."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for content in _captures(real):
        if isinstance(content.get("version"), dict) and "number" in content["version"]:
            by_id.setdefault(str(content["id"]), []).append(content)

    out = RealConfluence(root=root)
    version_lines: list[dict[str, Any]] = []
    for content_id, captures in by_id.items():
        captures.sort(key=lambda c: c["version"]["number"])
        current = dict(captures[-1], status="current")
        out.content[content_id] = current
        numbers: dict[int, dict[str, Any]] = {c["version"]["number"]: c for c in captures[:-1]}
        for number, capture in sorted(numbers.items()):
            version = capture["version"]
            version_lines.append(
                {
                    "page_id": content_id,
                    "number": number,
                    "when": version.get("when"),
                    "by": version.get("by"),
                    "message": version.get("message", ""),
                    "body": _storage(capture),
                }
            )
        out.versions[content_id] = sorted([*numbers, current["version"]["number"]])

    mocks = json.loads((real / "confluence" / MCP_MOCKS).read_text(encoding="utf-8"))
    spaces = mocks["MOCK_SPACES_RESPONSE"]["results"]
    out.spaces = [s["key"] for s in spaces]

    folder = root / "confluence"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"format": 1, "name": "real-confluence", "as_of": "2024-02-01T00:00:00+00:00"}
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (folder / "spaces.json").write_text(json.dumps(spaces), encoding="utf-8")
    (folder / "pages.jsonl").write_text(
        "".join(json.dumps(c) + "\n" for c in out.content.values()), encoding="utf-8"
    )
    (folder / "page_versions.jsonl").write_text(
        "".join(json.dumps(v) + "\n" for v in version_lines), encoding="utf-8"
    )
    return out
