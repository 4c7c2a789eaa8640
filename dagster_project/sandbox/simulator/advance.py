"""``advance``: move a simulated dataset forward by N days.

It reads the dataset once into a compact index (a few fields per object), plans the
days' activity against that index, then rewrites every JSON Lines file line by line:
untouched lines are copied byte for byte, touched ones get their new changelog entries,
notes or versions and a bumped ``updated`` / ``updated_at`` / ``version.when``, and new
objects are appended. Each file is written to a temporary file and atomically replaced.

Truth stays exact because advance only takes actions whose consequences it knows:
objects that truth.json names in a non-compliant situation are left alone, starting a
clean UI story or merging a clean integration merge request appends the compliant gate
evaluation it causes, and the situations it injects on purpose (reopen, scope change,
PRD edit, Done with an open merge request) are appended as they happen.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from dagster_project.sandbox.simulator.advance_day import Day
from dagster_project.sandbox.simulator.advance_state import INJECTED, World
from dagster_project.sandbox.simulator.clock import utc_ts
from dagster_project.sandbox.simulator.generate import TRUTH_FILE, write_truth
from dagster_project.sandbox.simulator.org import build_org


@dataclass
class AdvanceSummary:
    """What ``advance`` changed: touched and new objects per type, new situations, seconds."""

    path: Path
    days: int
    from_as_of: str
    to_as_of: str
    touched: dict[str, int]
    created: dict[str, int]
    situations: dict[str, int]
    elapsed_seconds: float

    def lines(self) -> list[str]:
        out = [
            f"advanced {self.path} by {self.days} day(s): {self.from_as_of} -> {self.to_as_of} "
            f"in {self.elapsed_seconds:.1f} s"
        ]
        for k in sorted(set(self.touched) | set(self.created)):
            out.append(
                f"  {k:<16} touched {self.touched.get(k, 0):>7,}  new {self.created.get(k, 0):>7,}"
            )
        out.append(f"  new situations  {sum(self.situations.values()):>7,}")
        return out


# --- writing ----------------------------------------------------------------------------------


def _rewrite(path: Path, transform, extra: list[Any]) -> None:
    """Stream ``path`` into a temp file through ``transform`` (None: copy the line), append, replace."""
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as out:
        if path.exists():
            with path.open("rb") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    new = transform(line) if transform else None
                    out.write(line if new is None else new)
        for obj in extra:
            out.write(_dump(obj))
    os.replace(tmp, path)


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


_ID_RE = re.compile(rb'"key":"([A-Z][A-Z0-9]*-\d+)"')


def _write(w: World) -> None:
    root = w.root
    jira = w.jira

    def apply_issue(obj: dict[str, Any]) -> dict[str, Any]:
        for op in w.issue_ops.get(obj["key"], []):
            _, hist, fields, at = op
            obj["changelog"]["histories"].append(hist)
            obj["fields"].update(fields)
            obj["fields"]["updated"] = jira.ts(at)
        n = len(obj["changelog"]["histories"])
        obj["changelog"]["total"] = obj["changelog"]["maxResults"] = n
        return obj

    def issue_line(line: bytes) -> bytes | None:
        m = _ID_RE.search(line)
        if m is None or m.group(1).decode() not in w.issue_ops:
            return None
        return _dump(apply_issue(json.loads(line)))

    _rewrite(root / "jira/issues.jsonl", issue_line, [apply_issue(o) for o in w.new["issues"]])

    def mr_ref(obj: dict[str, Any]) -> str:
        return f"{w.org.repo_by_id(obj['project_id']).path}!{obj['iid']}"

    def apply_mr(obj: dict[str, Any]) -> dict[str, Any]:
        for op in w.mr_ops.get(mr_ref(obj), []):
            if op[0] == "fields":
                obj.update(op[1])
                if "sha" in op[1] and isinstance(obj.get("diff_refs"), dict):
                    # a push moves the head of the MR's diff
                    obj["diff_refs"] = {**obj["diff_refs"], "head_sha": op[1]["sha"]}
            elif op[0] == "note":
                obj["updated_at"] = max(obj["updated_at"], utc_ts(op[2]))
        return obj

    def apply_notes(obj: dict[str, Any]) -> dict[str, Any]:
        for op in w.mr_ops.get(mr_ref(obj), []):
            if op[0] == "note":
                obj["notes"].append(op[1])
        return obj

    def apply_approvals(obj: dict[str, Any]) -> dict[str, Any]:
        ops = w.mr_ops.get(mr_ref(obj), [])
        a = obj["approvals"]
        for op in ops:
            if op[0] == "approve":
                user = {"user": w.gitlab.user(op[1])}
                if user not in a["approved_by"]:
                    a["approved_by"].append(user)
                a["approved"], a["approvals_left"] = True, 0
            elif op[0] == "fields":
                a["state"] = op[1].get("state", a["state"])
                if "updated_at" in op[1]:
                    a["updated_at"] = op[1]["updated_at"]
            elif op[0] == "note":
                a["updated_at"] = max(a["updated_at"], utc_ts(op[2]))
        return obj

    refs_touched = set(w.mr_ops)

    def by_ref(fn):
        pid_re = re.compile(rb'"project_id":(\d+)')
        iid_re = re.compile(rb'"iid":(\d+)')

        def t(line: bytes) -> bytes | None:
            pid = int(pid_re.search(line).group(1))  # type: ignore[union-attr]
            iid = int(iid_re.search(line).group(1))  # type: ignore[union-attr]
            if f"{w.org.repo_by_id(pid).path}!{iid}" not in refs_touched:
                return None
            return _dump(fn(json.loads(line)))

        return t

    _rewrite(
        root / "gitlab/merge_requests.jsonl",
        by_ref(apply_mr),
        [apply_mr(o) for o in w.new["merge_requests"]],
    )
    _rewrite(
        root / "gitlab/mr_notes.jsonl",
        by_ref(apply_notes),
        [apply_notes(o) for o in w.new["mr_notes"]],
    )
    _rewrite(
        root / "gitlab/mr_approvals.jsonl",
        by_ref(apply_approvals),
        [apply_approvals(o) for o in w.new["mr_approvals"]],
    )
    _rewrite(root / "gitlab/mr_changes.jsonl", None, w.new["mr_changes"])
    _rewrite(root / "gitlab/commits.jsonl", None, w.new["commits"])
    _rewrite(root / "gitlab/deployments.jsonl", None, w.new["deployments"])
    _rewrite(root / "jira/remotelinks.jsonl", None, w.new["remotelinks"])

    new_versions: list[dict[str, Any]] = []
    conf = w.confluence
    page_id_re = re.compile(rb'^\{"id":"(\d+)"')

    def page_line(line: bytes) -> bytes | None:
        m = page_id_re.match(line)
        if m is None or m.group(1).decode() not in w.page_ops:
            return None
        obj = json.loads(line)
        body = obj["body"]["storage"]["value"]
        number = obj["version"]["number"]
        for _, at, who, suffix in w.page_ops[obj["id"]]:
            body += suffix
            number += 1
            new_versions.append(
                {
                    "page_id": obj["id"],
                    "number": number,
                    "when": utc_ts(at),
                    "by": conf.user(who),
                    "body": body,
                }
            )
            obj["version"] = {
                "by": conf.user(who),
                "when": utc_ts(at),
                "friendlyWhen": at.strftime("%b %d, %Y"),
                "message": "",
                "number": number,
                "minorEdit": False,
                "_expandable": {"collaborators": "", "content": f"/rest/api/content/{obj['id']}"},
                "_links": {"self": f"{conf.base}/rest/api/content/{obj['id']}/version/{number}"},
            }
        obj["body"]["storage"]["value"] = body
        return _dump(obj)

    _rewrite(root / "confluence/pages.jsonl", page_line, w.new["pages"])
    _rewrite(root / "confluence/page_versions.jsonl", None, new_versions + w.new["page_versions"])

    projects = w.ds.json("gitlab/projects.json")
    for p in projects:
        at = w.repo_activity.get(p["id"])
        if at is not None:
            p["last_activity_at"] = utc_ts(at)
    (root / "gitlab/projects.json").write_text(
        json.dumps(projects, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )


def advance(dataset: Path, *, days: int, seed: int = 7) -> AdvanceSummary:
    """Move the organisation in ``dataset`` forward by ``days`` days (see the module docstring)."""
    started = time.perf_counter()
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    root = Path(dataset)
    truth_path = root / TRUTH_FILE
    if not truth_path.exists():
        raise ValueError(
            f"{root}: no {TRUTH_FILE}; only datasets written by the simulator can be advanced"
        )
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    gen = truth["generator"]
    org = build_org(gen["seed"], gen["flavor"], gen["people_per_team"])
    w = World(root, org, truth, seed, days)
    objects = len(w.issues) + len(w.mrs) + len(w.pages)
    for d in range(days):
        start = w.old_as_of + timedelta(days=d)
        budget = max(1, round(objects * w.rng.uniform(0.01, 0.03)))
        inject = INJECTED[(d + len(truth.get("advanced", []))) % len(INJECTED)]
        Day(w, start, budget).run(inject)
    late = [k for k, at in w.last_at.items() if at > w.new_as_of]
    if late:  # an internal error, not bad input: every event must fall inside the window
        raise RuntimeError(f"advance planned events after the new as_of for {late[:5]}")
    _write(w)
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    manifest["as_of"] = w.new_as_of.isoformat()
    tmp = root / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, root / "manifest.json")
    new_counts = Counter(e["kind"] for e in w.new_truth)
    counts = Counter(truth.get("counts", {})) + new_counts
    header = {k: v for k, v in truth.items() if k not in ("counts", "situations")}
    header["as_of"] = w.new_as_of.isoformat()
    header["advanced"] = list(truth.get("advanced", [])) + [
        {"days": days, "seed": seed, "from": w.old_as_of.isoformat(), "to": w.new_as_of.isoformat()}
    ]
    lines = [
        json.dumps(e, ensure_ascii=False, separators=(",", ":"))
        for e in truth["situations"] + w.new_truth
    ]
    write_truth(truth_path, header, counts, lines)
    touched = {k: len(v) for k, v in sorted(w.touched.items())}
    return AdvanceSummary(
        root,
        days,
        w.old_as_of.isoformat(),
        w.new_as_of.isoformat(),
        touched,
        dict(sorted(w.created.items())),
        dict(sorted(new_counts.items())),
        round(time.perf_counter() - started, 3),
    )
