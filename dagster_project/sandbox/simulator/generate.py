"""``generate``: write a complete format-v1 dataset and its ``truth.json``.

Features are planned, judged and written one at a time, so memory stays flat however
many issues are asked for; only a few small cross-feature tables (key counters, merges
per repository and day for deployments) live for the whole run. Truth entries are
streamed to a scratch file and assembled into ``truth.json`` at the end.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dagster_project.sandbox.dataset import FORMAT_VERSION, JSON_FILES, JSONL_FILES, DatasetWriter
from dagster_project.sandbox.simulator.confluence_payloads import ConfluenceRenderer
from dagster_project.sandbox.simulator.gitlab_payloads import GitLabRenderer, readme
from dagster_project.sandbox.simulator.jira_payloads import JiraRenderer
from dagster_project.sandbox.simulator.model import Ctx, Feature
from dagster_project.sandbox.simulator.org import Org, build_org, people_per_team
from dagster_project.sandbox.simulator.plan import LAST_START_DAYS, Planner, plan_sections
from dagster_project.sandbox.simulator.situations import Assigner, effective_rates, judge

SCALES = {"demo": 150, "medium": 3000, "large": 20000}
DEFAULT_AS_OF = datetime(2026, 3, 31, 18, 0, tzinfo=UTC)
TRUTH_FILE = "truth.json"
AVG_ISSUES_PER_FEATURE = 6.4


@dataclass
class GenerateSummary:
    """What ``generate`` wrote: object counts per type, situations per kind, seconds."""

    path: Path
    counts: dict[str, int]
    situations: dict[str, int]
    elapsed_seconds: float
    as_of: str = ""
    flavor: str = ""

    def lines(self) -> list[str]:
        out = [
            f"dataset {self.path} ({self.flavor}, as of {self.as_of}) in {self.elapsed_seconds:.1f} s"
        ]
        out += [f"  {k:<16} {v:>9,}" for k, v in self.counts.items()]
        out.append(
            f"  situations       {sum(self.situations.values()):>9,} in {len(self.situations)} kinds"
        )
        return out


def window_days(issues: int) -> int:
    """How far back the organisation's history reaches (longer for bigger datasets)."""
    return 360 if issues <= 500 else (450 if issues <= 5000 else 540)


def _clean(out: Path) -> None:
    """Remove what an earlier dataset left here (only dataset files; nothing else)."""
    for rel in (*JSON_FILES, *JSONL_FILES, TRUTH_FILE):
        p = out / rel
        if p.is_file():
            p.unlink()
    files = out / "gitlab" / "files"
    if files.is_dir():
        shutil.rmtree(files)


class TruthSink:
    """Truth entries streamed to a scratch file, assembled into truth.json at the end."""

    def __init__(self, out: Path):
        self.out = out
        self.scratch = out / ".truth.partial.jsonl"
        self.fh = self.scratch.open("w", encoding="utf-8")
        self.counts: Counter[str] = Counter()

    def add(self, entries: list[dict[str, Any]]) -> None:
        for e in entries:
            self.fh.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")
            self.counts[e["kind"]] += 1

    def finish(self, header: dict[str, Any]) -> None:
        self.fh.close()
        write_truth(self.out / TRUTH_FILE, header, self.counts, _lines(self.scratch))
        self.scratch.unlink()


def _lines(path: Path):
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield line.rstrip("\n")


def write_truth(path: Path, header: dict[str, Any], counts: Counter[str], entry_lines) -> None:
    """truth.json: a header, counts per kind, then one situation per line (diff-friendly)."""
    tmp = path.with_suffix(".json.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write("{\n")
        for k, v in header.items():
            fh.write(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},\n")
        fh.write(f' "counts": {json.dumps(dict(sorted(counts.items())))},\n')
        fh.write(' "situations": [')
        first = True
        for line in entry_lines:
            fh.write(("\n  " if first else ",\n  ") + line)
            first = False
        fh.write("\n ]\n}\n")
    os.replace(tmp, path)


class FeatureWriter:
    """Renders planned features into the dataset files."""

    def __init__(self, org: Org, ctx: Ctx, writer: DatasetWriter, as_of: datetime):
        self.org = org
        self.ctx = ctx
        self.w = writer
        self.jira = JiraRenderer(org, as_of)
        self.gitlab = GitLabRenderer(org, as_of)
        self.confluence = ConfluenceRenderer(org)
        self.home_ids: dict[str, str] = {}
        self.counts: Counter[str] = Counter()

    def pages(self, pages) -> None:
        for p in pages:
            if not p.id or not p.versions:
                continue
            if p.kind == "home":
                self.home_ids[p.team.key] = p.id
            self.w.append(
                "confluence/pages.jsonl", self.confluence.page(p, self.home_ids[p.team.key])
            )
            self.counts["pages"] += 1
            for v in self.confluence.versions(p):
                self.w.append("confluence/page_versions.jsonl", v)
                self.counts["page_versions"] += 1

    def feature(self, f: Feature) -> None:
        for issue in f.issues():
            obj, self.ctx.next_history_id = self.jira.issue(issue, self.ctx.next_history_id)
            self.w.append("jira/issues.jsonl", obj)
            self.counts["issues"] += 1
            links = self.jira.remote_links(issue)
            if links:
                self.w.append("jira/remotelinks.jsonl", links)
                self.counts["remotelinks"] += 1
        for mr in f.mrs:
            if not mr.iid:
                continue
            self.w.append("gitlab/merge_requests.jsonl", self.gitlab.merge_request(mr))
            self.w.append("gitlab/mr_changes.jsonl", self.gitlab.changes(mr))
            self.w.append("gitlab/mr_notes.jsonl", self.gitlab.notes(mr))
            self.w.append("gitlab/mr_approvals.jsonl", self.gitlab.approvals(mr))
            self.counts["merge_requests"] += 1
            for c in self.gitlab.commits(mr):
                self.w.append("gitlab/commits.jsonl", c)
                self.counts["commits"] += 1
        spec = f.spec
        if spec is not None and spec.tagged_at is not None:
            self.w.write_file(spec.repo.id, spec.tag, spec.path, spec.approved_text.encode())
            current = spec.drift_text if spec.drift_at else spec.approved_text
            self.w.write_file(spec.repo.id, spec.repo.default_branch, spec.path, current.encode())
            self.counts["files"] += 2
            if spec.drift_commit is not None:
                self.w.append(
                    "gitlab/commits.jsonl", self.gitlab.commit(spec.repo, spec.drift_commit)
                )
                self.counts["commits"] += 1
        self.pages(f.pages)


def generate(
    out: Path,
    *,
    seed: int = 7,
    scale: str = "demo",
    issues: int | None = None,
    flavor: str = "cloud",
    as_of: datetime | None = None,
    rates: dict[str, float] | None = None,
) -> GenerateSummary:
    """Write a simulated organisation as a format-v1 dataset at ``out`` (plus truth.json)."""
    started = time.perf_counter()
    if issues is None:
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
        issues = SCALES[scale]
    if issues < 10:
        raise ValueError(f"issues must be at least 10, not {issues}")
    if flavor not in ("cloud", "server"):
        raise ValueError(f"flavor must be 'cloud' or 'server', not {flavor!r}")
    as_of = as_of or DEFAULT_AS_OF
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    as_of = as_of.astimezone(UTC)
    rates_used = effective_rates(rates)
    per_team = people_per_team(issues)
    org = build_org(seed, flavor, per_team)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _clean(out)
    writer = DatasetWriter(out)
    ctx = Ctx(org, as_of, seed, Assigner(rates_used))
    fw = FeatureWriter(org, ctx, writer, as_of)
    truth = TruthSink(out)

    window_start = as_of - timedelta(days=window_days(issues))
    last_start = as_of - timedelta(days=LAST_START_DAYS)
    expected_features = max(1, math.ceil(issues / AVG_ISSUES_PER_FEATURE))
    step = (last_start - window_start) / expected_features
    fw.pages(plan_sections(ctx, window_start))

    remaining = issues
    index = 0
    try:
        while remaining > 0:
            jitter = random.Random(f"{seed}:start:{index}").random()
            t0 = min(window_start + step * (index + jitter), last_start)
            t0 = t0.replace(microsecond=0)
            feature = Planner(ctx, index, t0, remaining).plan()
            fw.feature(feature)
            truth.add(judge(feature))
            remaining -= len(feature.issues())
            index += 1

        for repo in org.repos():
            writer.write_file(repo.id, repo.default_branch, "README.md", readme(repo))
            fw.counts["files"] += 1
        for dep in fw.gitlab.deployments(ctx.merges, seed):
            writer.append("gitlab/deployments.jsonl", dep)
            fw.counts["deployments"] += 1
        writer.write_json(
            "gitlab/projects.json",
            [
                fw.gitlab.project(r, ctx.activity.get(r.id), org.team_of_repo(r).people[0])
                for r in org.repos()
            ],
        )
        writer.write_json("jira/fields.json", fw.jira.fields_json())
        writer.write_json("jira/statuses.json", fw.jira.statuses_json())
        writer.write_json(
            "confluence/spaces.json",
            [fw.confluence.space(t, fw.home_ids[t.key]) for t in org.teams],
        )
        for rel in JSONL_FILES:  # every file of the format exists, even when empty
            if not (out / rel).exists():
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                (out / rel).touch()
        name = f"simulated-{scale if issues == SCALES.get(scale) else 'custom'}-{flavor}-seed{seed}"
        writer.write_json(
            "manifest.json",
            {
                "format": FORMAT_VERSION,
                "name": name,
                "as_of": as_of.isoformat(),
                "jira_flavor": flavor,
            },
        )
    finally:
        writer.close()
    fw.counts["projects"] = len(org.repos())
    fw.counts["spaces"] = len(org.teams)
    header = {
        "format": 1,
        "name": name,
        "as_of": as_of.isoformat(),
        "jira_flavor": flavor,
        "generator": {
            "seed": seed,
            "scale": scale,
            "issues": issues,
            "flavor": flavor,
            "people_per_team": per_team,
            "features": index,
            "rates": rates_used,
        },
        "advanced": [],
    }
    truth.finish(header)
    order = (
        "issues",
        "remotelinks",
        "merge_requests",
        "commits",
        "deployments",
        "files",
        "projects",
        "pages",
        "page_versions",
        "spaces",
    )
    counts = {k: fw.counts.get(k, 0) for k in order}
    return GenerateSummary(
        out,
        counts,
        dict(sorted(truth.counts.items())),
        round(time.perf_counter() - started, 3),
        as_of.isoformat(),
        flavor,
    )
