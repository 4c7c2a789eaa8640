"""Turn the captured real GitLab payloads into a format-v1 dataset the emulator serves.

The captures (``shared/fixtures/real/gitlab``) are read where they are and written to a
temporary dataset, never copied into the project:

* DevLake CSVs hold one raw API object per row in ``data``, grouped by the request
  ``url`` (``/projects/12345678/merge_requests/5/notes?...`` says which MR a note
  belongs to); the two MR sets overlap by ``(project_id, iid)``;
* the go-gitlab and narkoz JSON files are single answers of the endpoints they name.

What the ingestion reads becomes dataset records: MRs, notes, MR diffs, approval
states, commits, deployments and one repository file. The captures hold no project
objects, and the approval states belong to MRs that are not captured, so those are
*scaffolding*: minimal objects built from what the payloads say (paths from
``web_url``), reported apart so a test can tell them from real payloads. Captures of
endpoints the product does not ingest (issues, pipelines, jobs, members, users,
branches, discussions, test reports, a top-level tree) are listed in ``ignored``; a
captured object the emulator cannot serve (the documented single commit, whose dates
the example left out) in ``unservable``.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster_project.sandbox.dataset import DatasetWriter

DEVLAKE_PROJECT = 12345678
DOCS_PROJECT = 3  # the narkoz documentation examples: approvals, commits, a README
README_REF = "master"
_NOTES_URL = re.compile(r"/projects/(\d+)/merge_requests/(\d+)/(notes|commits)\b")
_PROJECT_URL = re.compile(r"/projects/(\d+)/")

INGESTED = {
    "devlake_gitlabcom_merge_requests.csv",
    "devlake_gitlabcom_merge_requests_set2.csv",
    "devlake_gitlabcom_merge_request_notes.csv",
    "devlake_gitlabcom_merge_request_commits.csv",
    "devlake_gitlabcom_deployments.csv",
    "gogitlab_gitlabcom_list_merge_requests.json",
    "gogitlab_gitlabcom_get_merge_request.json",
    "gogitlab_docsderived_list_merge_request_diff.json",
    "gogitlab_docsderived_get_commit.json",
    "narkoz_docsderived_merge_request_approval_state.json",
    "narkoz_docsderived_merge_request_approvals.json",
    "narkoz_docsderived_merge_request_commits.json",
    "narkoz_docsderived_project_commits.json",
    "narkoz_docsderived_get_repository_file.json",
}


@dataclass
class RealGitlab:
    root: Path
    # object type -> the raw keys ingestion must store (scaffolding included)
    expected: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # object type -> keys of objects this helper built rather than read
    scaffolding: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # (object type, key) -> a real payload that must be stored exactly as captured
    verbatim: dict[tuple[str, str], Any] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    # captured objects the emulator cannot place, with why
    unservable: list[str] = field(default_factory=list)


def _devlake(path: Path) -> list[tuple[str, dict[str, Any]]]:
    csv.field_size_limit(1 << 30)
    with path.open(newline="", encoding="utf-8") as fh:
        return [(row["url"], json.loads(row["data"])) for row in csv.DictReader(fh)]


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _project_path(web_url: str) -> str:
    match = re.match(r"^https?://[^/]+/(.+?)(?:/-)?/(?:merge_requests|commit|pipelines)/", web_url)
    if not match:
        raise ValueError(f"no project path in {web_url!r}")
    return match.group(1)


def _project(project_id: int, path: str, last_activity_at: str) -> dict[str, Any]:
    namespace = path.rsplit("/", 1)[0]
    return {
        "id": project_id,
        "name": path.rsplit("/", 1)[-1],
        "path": path.rsplit("/", 1)[-1],
        "path_with_namespace": path,
        "default_branch": README_REF,
        "last_activity_at": last_activity_at,
        "web_url": f"https://gitlab.example.com/{path}",
        "namespace": {
            "id": zlib.crc32(namespace.encode()) % 10_000,
            "kind": "group",
            "full_path": namespace,
        },
    }


def build_gitlab_dataset(fixtures: Path, out: Path) -> RealGitlab:
    """Write ``out`` (a format-v1 dataset) from the captures in ``fixtures``."""
    real = RealGitlab(root=out)
    real.ignored = sorted(
        p.name for p in fixtures.iterdir() if p.is_file() and p.name not in INGESTED
    )
    mrs: dict[tuple[int, int], dict[str, Any]] = {}
    notes: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    changes: dict[tuple[int, int], list[dict[str, Any]]] = {}
    approvals: dict[tuple[int, int], dict[str, Any]] = {}
    commits: dict[tuple[int, str], dict[str, Any]] = {}
    deployments: dict[tuple[int, int], dict[str, Any]] = {}
    paths: dict[int, str] = {}

    # -- merge requests --------------------------------------------------------------
    for name in (
        "devlake_gitlabcom_merge_requests.csv",
        "devlake_gitlabcom_merge_requests_set2.csv",
    ):
        for _url, mr in _devlake(fixtures / name):
            mrs.setdefault((mr["project_id"], mr["iid"]), mr)
    listed = _json(fixtures / "gogitlab_gitlabcom_list_merge_requests.json")
    single = _json(fixtures / "gogitlab_gitlabcom_get_merge_request.json")
    for mr in [*listed, single]:
        mrs.setdefault((mr["project_id"], mr["iid"]), mr)
    for mr in mrs.values():
        paths.setdefault(mr["project_id"], _project_path(mr["web_url"]))

    # MR diffs (a documentation example): the changes of the single captured MR.
    diff = _json(fixtures / "gogitlab_docsderived_list_merge_request_diff.json")
    changes[(single["project_id"], single["iid"])] = diff
    real.verbatim[("mr_change", f"{single['project_id']}!{single['iid']}")] = diff

    # Notes: the MR is in the request URL.
    for url, note in _devlake(fixtures / "devlake_gitlabcom_merge_request_notes.csv"):
        project_id, iid, _ = _NOTES_URL.search(url).groups()  # type: ignore[union-attr]
        notes[(int(project_id), int(iid))].append(note)

    # Approval states of MRs nobody captured: their MR becomes scaffolding.
    for name in (
        "narkoz_docsderived_merge_request_approval_state.json",
        "narkoz_docsderived_merge_request_approvals.json",
    ):
        state = _json(fixtures / name)
        key = (state["project_id"], state["iid"])
        approvals[key] = state
        real.verbatim[("mr_approval", f"{key[0]}!{key[1]}")] = state
        if key not in mrs:
            mrs[key] = {
                **{k: state[k] for k in ("id", "iid", "project_id", "title", "description")},
                **{k: state[k] for k in ("state", "created_at", "updated_at")},
                "source_branch": "approvals-api",
                "target_branch": README_REF,
                "labels": [],
                "author": None,
                "web_url": f"https://gitlab.example.com/docs/project-{key[0]}/-/merge_requests/{key[1]}",
            }
            real.scaffolding["merge_request"].add(f"{key[0]}!{key[1]}")
            paths.setdefault(key[0], f"docs/project-{key[0]}")

    # -- commits and deployments -----------------------------------------------------
    for url, commit in _devlake(fixtures / "devlake_gitlabcom_merge_request_commits.csv"):
        project_id = int(_NOTES_URL.search(url).group(1))  # type: ignore[union-attr]
        commits.setdefault((project_id, commit["id"]), {**commit, "project_id": project_id})
    for name in (
        "narkoz_docsderived_merge_request_commits.json",
        "narkoz_docsderived_project_commits.json",
    ):
        for commit in _json(fixtures / name):
            commits.setdefault((DOCS_PROJECT, commit["id"]), {**commit, "project_id": DOCS_PROJECT})
    detailed = _json(fixtures / "gogitlab_docsderived_get_commit.json")
    if detailed.get("committed_date") or detailed.get("created_at"):
        commits.setdefault((detailed["project_id"], detailed["id"]), detailed)
        paths.setdefault(
            detailed["project_id"], _project_path(detailed["last_pipeline"]["web_url"])
        )
    else:  # a documentation example with every date cut out: no server sends that
        real.unservable.append(f"commit {detailed['id']}: no committed_date or created_at")
    for url, dep in _devlake(fixtures / "devlake_gitlabcom_deployments.csv"):
        project_id = int(_PROJECT_URL.search(url).group(1))  # type: ignore[union-attr]
        deployments.setdefault((project_id, dep["id"]), {**dep, "project_id": project_id})
        real.verbatim[("deployment", f"{project_id}:{dep['id']}")] = dep

    # -- write -------------------------------------------------------------------------
    readme = _json(fixtures / "narkoz_docsderived_get_repository_file.json")
    paths.setdefault(DOCS_PROJECT, f"docs/project-{DOCS_PROJECT}")
    activity = max(m["updated_at"] for m in mrs.values())
    projects = [_project(pid, paths[pid], activity) for pid in sorted(paths)]
    with DatasetWriter(out) as writer:
        writer.write_json(
            "manifest.json",
            {"format": 1, "name": "real-gitlab", "as_of": activity, "jira_flavor": "server"},
        )
        writer.write_json("gitlab/projects.json", projects)
        for (pid, iid), mr in sorted(mrs.items()):
            writer.append("gitlab/merge_requests.jsonl", mr)
            writer.append(
                "gitlab/mr_changes.jsonl",
                {"project_id": pid, "iid": iid, "changes": changes.get((pid, iid), [])},
            )
            if (pid, iid) in notes:
                writer.append(
                    "gitlab/mr_notes.jsonl",
                    {"project_id": pid, "iid": iid, "notes": notes[(pid, iid)]},
                )
            if (pid, iid) in approvals:
                writer.append(
                    "gitlab/mr_approvals.jsonl",
                    {"project_id": pid, "iid": iid, "approvals": approvals[(pid, iid)]},
                )
        for _key, commit in sorted(commits.items()):
            writer.append("gitlab/commits.jsonl", commit)
        for _key, dep in sorted(deployments.items()):
            writer.append("gitlab/deployments.jsonl", dep)
        writer.write_file(
            DOCS_PROJECT, readme["ref"], readme["file_path"], base64.b64decode(readme["content"])
        )

    # -- what ingestion must store -----------------------------------------------------
    exp = real.expected
    exp["project"] = {str(p["id"]) for p in projects}
    real.scaffolding["project"] = set(exp["project"])
    mr_keys = {f"{pid}!{iid}" for pid, iid in mrs}
    exp["merge_request"] = mr_keys
    # GitLab answers /changes and /approvals for every MR, captured or not.
    exp["mr_change"] = set(mr_keys)
    exp["mr_approval"] = set(mr_keys)
    exp["mr_note"] = {f"{pid}!{iid}!{n['id']}" for (pid, iid), ns in notes.items() for n in ns}
    exp["commit"] = {f"{pid}:{sha}" for pid, sha in commits}
    exp["deployment"] = {f"{pid}:{did}" for pid, did in deployments}
    exp["file"] = {f"{DOCS_PROJECT}:{readme['ref']}:{readme['file_path']}"}
    real.verbatim[("file", f"{DOCS_PROJECT}:{readme['ref']}:{readme['file_path']}")] = {
        "blob_id": readme["blob_id"]
    }
    return real
