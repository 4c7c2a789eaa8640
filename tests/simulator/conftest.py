"""Datasets generated once per test run and shared (read-only) by the simulator tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dagster_project.sandbox.simulator import generate


@pytest.fixture(scope="session")
def demo_cloud(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo_cloud")
    generate(out, seed=7, flavor="cloud")
    return out


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo_server")
    generate(out, seed=7, flavor="server")
    return out


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def truth(root: Path) -> dict[str, Any]:
    return json.loads((root / "truth.json").read_text(encoding="utf-8"))


def all_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
