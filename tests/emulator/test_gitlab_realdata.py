"""Real GitLab payloads served by the emulator and fetched by python-gitlab itself.

The captures become a dataset in a temporary folder (tests/realdata_gitlab.py); small
pages force python-gitlab through many `Link rel=next` hops.
"""

from __future__ import annotations

import gitlab
import pytest

from tests.conftest import sandbox_stats
from tests.realdata_gitlab import build_gitlab_dataset


@pytest.fixture(scope="module")
def real_gitlab(real_fixtures, tmp_path_factory):
    return build_gitlab_dataset(real_fixtures / "gitlab", tmp_path_factory.mktemp("gl") / "ds")


def test_python_gitlab_lists_exactly_the_captured_objects(serve, real_gitlab):
    emulator = serve(real_gitlab.root)
    gl = gitlab.Gitlab(emulator.url, private_token="t")
    projects = gl.projects.list(iterator=True, per_page=2)
    project_ids = sorted(p.id for p in projects)
    assert {str(i) for i in project_ids} == real_gitlab.expected["project"]

    mr_keys, note_keys = set(), set()
    for project_id in project_ids:
        project = gl.projects.get(project_id, lazy=True)
        for mr in project.mergerequests.list(get_all=True, state="all", per_page=3):
            mr_keys.add(f"{project_id}!{mr.iid}")
            for note in mr.notes.list(get_all=True, per_page=2):
                note_keys.add(f"{project_id}!{mr.iid}!{note.id}")
    assert mr_keys == real_gitlab.expected["merge_request"]
    assert note_keys == real_gitlab.expected["mr_note"]

    commit_keys = set()
    for project_id in project_ids:
        commits = gl.projects.get(project_id, lazy=True).commits.list(
            get_all=True, with_stats=True, per_page=5, query_parameters={"all": True}
        )
        commit_keys |= {f"{project_id}:{c.id}" for c in commits}
    assert commit_keys == real_gitlab.expected["commit"]

    paged = sandbox_stats(emulator.url)["by_endpoint"]
    pages = -(-len(project_ids) // 2)
    assert len(project_ids) > 2 and paged["GET /api/v4/projects"] == pages  # via Link only
