"""Sandbox dataset directory, format v1 (see docs/dataset-format.md).

A dataset is a folder of raw API objects exactly as the real APIs return them. The
emulator serves it and the simulator writes it. Large JSON Lines files are indexed by
byte offset, so serving 100,000 issues keeps only a few fields per object in memory and
parses a full object when a response needs it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1

# Every file of format v1, relative to the dataset root.
JSON_FILES = (
    "manifest.json",
    "jira/fields.json",
    "jira/statuses.json",
    "gitlab/projects.json",
    "confluence/spaces.json",
)
JSONL_FILES = (
    "jira/issues.jsonl",
    "jira/remotelinks.jsonl",
    "gitlab/merge_requests.jsonl",
    "gitlab/mr_changes.jsonl",
    "gitlab/mr_notes.jsonl",
    "gitlab/mr_approvals.jsonl",
    "gitlab/commits.jsonl",
    "gitlab/deployments.jsonl",
    "confluence/pages.jsonl",
    "confluence/page_versions.jsonl",
)


class DatasetError(ValueError):
    """A dataset directory that cannot be served: the message names the file and line."""


@dataclass(frozen=True)
class Manifest:
    format: int
    name: str
    as_of: str
    jira_flavor: str  # "cloud" | "server"

    @classmethod
    def read(cls, root: Path) -> Manifest:
        path = root / "manifest.json"
        if not path.exists():
            raise DatasetError(f"{root}: not a dataset (no manifest.json)")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: invalid JSON ({exc})") from exc
        if raw.get("format") != FORMAT_VERSION:
            raise DatasetError(f"{path}: format {raw.get('format')!r}, expected {FORMAT_VERSION}")
        flavor = raw.get("jira_flavor", "cloud")
        if flavor not in ("cloud", "server"):
            raise DatasetError(f"{path}: jira_flavor must be 'cloud' or 'server', not {flavor!r}")
        return cls(
            format=FORMAT_VERSION,
            name=str(raw.get("name", root.name)),
            as_of=str(raw.get("as_of", "")),
            jira_flavor=flavor,
        )


@dataclass
class JsonlTable:
    """A JSON Lines file indexed by byte offset.

    ``index`` maps each parsed object to the small dict kept in memory (keys, dates,
    ids used for filtering and sorting); ``load(i)`` re-reads and parses object i.
    """

    path: Path
    index: Callable[[dict[str, Any]], dict[str, Any]]
    metas: list[dict[str, Any]] = field(default_factory=list)
    _spans: list[tuple[int, int]] = field(default_factory=list)
    _fd: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.path.exists():
            return
        offset = 0
        with self.path.open("rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                length = len(line)
                if line.strip():
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DatasetError(f"{self.path}:{lineno}: invalid JSON ({exc})") from exc
                    try:
                        meta = self.index(obj)
                    except (KeyError, TypeError, ValueError) as exc:
                        raise DatasetError(
                            f"{self.path}:{lineno}: missing or malformed {exc}"
                        ) from exc
                    meta["_pos"] = len(self.metas)
                    self.metas.append(meta)
                    self._spans.append((offset, length))
                offset += length
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return len(self.metas)

    def load(self, pos: int) -> dict[str, Any]:
        offset, length = self._spans[pos]
        assert self._fd is not None
        return json.loads(os.pread(self._fd, length, offset))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for pos in range(len(self.metas)):
            yield self.load(pos)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Dataset:
    """Read access to one dataset directory; absent files read as empty."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.manifest = Manifest.read(self.root)
        self._tables: dict[str, JsonlTable] = {}
        self._lock = threading.Lock()

    def json(self, rel: str, default: Any = None) -> Any:
        path = self.root / rel
        if not path.exists():
            return [] if default is None else default
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: invalid JSON ({exc})") from exc

    def table(self, rel: str, index: Callable[[dict[str, Any]], dict[str, Any]]) -> JsonlTable:
        """The indexed JSON Lines file ``rel``; built once, on first use."""
        with self._lock:
            if rel not in self._tables:
                self._tables[rel] = JsonlTable(self.root / rel, index)
            return self._tables[rel]

    def jsonl(self, rel: str) -> Iterator[dict[str, Any]]:
        """Stream every object of a JSON Lines file (no index kept)."""
        path = self.root / rel
        if not path.exists():
            return
        with path.open("rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DatasetError(f"{path}:{lineno}: invalid JSON ({exc})") from exc

    def file_path(self, project_id: int | str, ref: str, path: str) -> Path:
        """Where a raw repository file lives: gitlab/files/<project_id>/<ref>/<path>."""
        base = (self.root / "gitlab" / "files" / str(project_id) / ref).resolve()
        target = (base / path).resolve()
        if base not in target.parents and target != base:
            raise DatasetError(f"file path escapes the dataset: {path!r}")
        return target

    def close(self) -> None:
        for table in self._tables.values():
            table.close()


class DatasetWriter:
    """Writes a dataset directory: JSON files whole, JSON Lines streamed line by line.

    Output is deterministic (sorted keys are not imposed: objects keep the key order the
    caller built, as real APIs do), so a seed gives byte-identical datasets.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._handles: dict[str, Any] = {}

    def write_json(self, rel: str, obj: Any) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    def append(self, rel: str, obj: Any) -> None:
        fh = self._handles.get(rel)
        if fh is None:
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = self._handles[rel] = path.open("w", encoding="utf-8")
        fh.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")

    def write_file(self, project_id: int | str, ref: str, path: str, content: bytes) -> None:
        target = self.root / "gitlab" / "files" / str(project_id) / ref / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)

    def close(self) -> None:
        for fh in self._handles.values():
            fh.close()
        self._handles.clear()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def scope_of(dataset: Path) -> dict[str, list[str]]:
    """Every Jira project, GitLab group and Confluence space of a dataset: the policy
    scope that makes each of them a unit of its own (the benchmarks' fan-out)."""
    projects = set()
    with (dataset / "jira" / "issues.jsonl").open() as lines:
        for line in lines:
            if line.strip():
                projects.add(json.loads(line)["fields"]["project"]["key"])
    gitlab = json.loads((dataset / "gitlab" / "projects.json").read_text())
    spaces = json.loads((dataset / "confluence" / "spaces.json").read_text())
    spaces = spaces["results"] if isinstance(spaces, dict) else spaces
    return {
        "jira_projects": sorted(projects),
        "gitlab_groups": sorted({p["namespace"]["full_path"] for p in gitlab}),
        "confluence_spaces": sorted(s["key"] for s in spaces),
    }
