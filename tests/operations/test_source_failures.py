"""A failed run ends with one line per failed source, fast; sources never mix.

The command is run as users run it (a subprocess with the variables set); the causes
are real: a closed port, a name under ``.invalid`` (RFC 6761: never resolves), a
socket that accepts and never answers, TLS spoken to a plain-HTTP port, and an emulator
that refuses the token.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import requests

from dagster_project.lib.connections import Connection
from dagster_project.lib.instances import normalise_url
from dagster_project.lib.reachability import Reach, http_problem, probe
from tests.conftest import HANDMADE
from tests.product.test_cli import driftgate

SECRET = "tok-9f8e7d6c5b"
JIRA_STATE = (
    "SELECT count(*) FILTER (WHERE NOT deleted), count(*) FILTER (WHERE deleted) "
    "FROM raw.latest WHERE source = 'jira'"
)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends


def quick_policy(tmp_path: Path) -> Path:
    policy = tmp_path / "policy.yaml"
    policy.write_text("ingest:\n  request_timeout_seconds: 2\n")
    return policy


def env_for(tmp_path: Path, **sources: str) -> dict[str, str]:
    return {
        "DRIFTGATE_DB": str(tmp_path / "dg.duckdb"),
        "DRIFTGATE_REPORTS": str(tmp_path / "reports"),
        "DRIFTGATE_POLICY": str(quick_policy(tmp_path)),
        "DAGSTER_HOME": str(tmp_path / "home"),
        **sources,
    }


def log_path(stderr: str) -> Path:
    found = re.search(r"full log: (\S+)", stderr)
    assert found, stderr
    return Path(found.group(1))


def test_three_unreachable_sources_give_three_lines_and_a_log(tmp_path, silent_port):
    refused = f"http://127.0.0.1:{closed_port()}"
    env = env_for(
        tmp_path,
        JIRA_URL=refused,
        JIRA_USER="svc",
        JIRA_TOKEN=SECRET,
        GITLAB_URL="http://gitlab.driftgate-test.invalid",
        GITLAB_TOKEN=SECRET,
        CONFLUENCE_URL=f"http://127.0.0.1:{silent_port}/wiki",
        CONFLUENCE_TOKEN=SECRET,
    )
    result = driftgate("run", cwd=tmp_path, env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    host = refused.removeprefix("http://")
    assert lines[:-1] == sorted(lines[:-1]) or len(lines) == 4
    assert (
        f"jira ({host}): connection refused (nothing listens on that port); check JIRA_URL" in lines
    )
    assert (
        "gitlab (gitlab.driftgate-test.invalid): DNS: the host name does not resolve; "
        "check GITLAB_URL" in lines
    )
    assert (
        f"confluence (127.0.0.1:{silent_port}): timed out after 2s; check CONFLUENCE_URL" in lines
    )
    assert len(lines) == 4  # the three sources, then the summary with the log's path
    assert lines[-1].startswith("driftgate: error: nightly job failed after")
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    log = log_path(result.stderr)
    text = log.read_text()
    assert "STEP_FAILURE" in text or "Failure" in text  # the full record is in the file
    assert "connection refused" in text
    # no retry of a source that cannot be reached at all
    assert "up for retry" not in text.lower()
    for output in (result.stdout, result.stderr, text):
        assert SECRET not in output


def test_refused_credentials_and_tls_name_the_variable_to_check(serve, tmp_path):
    emulator = serve(HANDMADE, require_token=SECRET)
    port = emulator.url.rsplit(":", 1)[1]
    env = env_for(
        tmp_path,
        JIRA_URL=emulator.url,
        JIRA_USER="svc",
        JIRA_TOKEN="wrong-token-123",
        GITLAB_URL=emulator.url.replace("http://", "https://"),
        GITLAB_TOKEN=SECRET,
    )
    result = driftgate("run", cwd=tmp_path, env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert (
        f"jira (127.0.0.1:{port}): 401 Unauthorized: the credentials were refused; "
        "check JIRA_USER and JIRA_TOKEN" in lines
    )
    tls = [line for line in lines if line.startswith(f"gitlab (127.0.0.1:{port}): TLS error")]
    assert len(tls) == 1 and tls[0].endswith("check GITLAB_URL")
    assert len(lines) == 3
    # Confluence has no URL while the others do: skipped, never served by the sandbox.
    assert "confluence: CONFLUENCE_URL is not set while another source URL is: skipped" in (
        result.stdout
    )
    with duckdb.connect(str(tmp_path / "dg.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.objects").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM raw.instances").fetchone()[0] == 0


def test_unset_sources_are_skipped_and_an_other_instance_is_refused(serve, tmp_path):
    emulator = serve(HANDMADE)
    env = env_for(tmp_path, JIRA_URL=emulator.url, JIRA_USER="svc", JIRA_TOKEN=SECRET)
    first = driftgate("run", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    skipped = "gitlab: GITLAB_URL is not set while another source URL is: skipped"
    assert first.stdout.count(skipped) == 1  # printed while the run went on, once
    db = str(tmp_path / "dg.duckdb")
    with duckdb.connect(db, read_only=True) as con:
        by_source = dict(
            con.execute("SELECT source, count(*) FROM raw.objects GROUP BY 1").fetchall()
        )
        instances = con.execute("SELECT source, instance FROM raw.instances").fetchall()
        jira_current = con.execute(JIRA_STATE).fetchone()
    assert set(by_source) == {"jira"} and by_source["jira"] > 0  # nothing simulated
    name = json.loads((HANDMADE / "manifest.json").read_text())["name"]
    assert instances == [("jira", f"sandbox:{name}")]  # the emulator names its dataset

    # A source skipped in a later run keeps everything it has: nothing is tombstoned.
    later = driftgate(
        "run", cwd=tmp_path, env=env_for(tmp_path, GITLAB_URL=emulator.url, GITLAB_TOKEN=SECRET)
    )
    assert later.returncode == 0, later.stderr[-2000:]
    assert "jira: JIRA_URL is not set while another source URL is: skipped" in later.stdout
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute(JIRA_STATE).fetchone() == jira_current
    assert jira_current[1] == 0

    # Another organisation is refused before anything is read.
    other_dir = shutil.copytree(HANDMADE, tmp_path / "other")
    manifest = json.loads((other_dir / "manifest.json").read_text())
    manifest["name"] = "another-organisation"
    (other_dir / "manifest.json").write_text(json.dumps(manifest))
    other = serve(other_dir)
    with duckdb.connect(db, read_only=True) as con:
        before = dict(con.execute("SELECT source, count(*) FROM raw.objects GROUP BY 1").fetchall())
    second = driftgate("run", cwd=tmp_path, env={**env, "JIRA_URL": other.url})
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert lines[0] == (
        f"jira: {db} holds jira data from sandbox:{name}, not from "
        "sandbox:another-organisation: refusing to mix two organisations; point "
        "DRIFTGATE_DB at another file for this one"
    )
    with duckdb.connect(db, read_only=True) as con:
        after = dict(con.execute("SELECT source, count(*) FROM raw.objects GROUP BY 1").fetchall())
    assert after == before  # nothing of the other organisation was written


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("http://127.0.0.1:{closed}", "connection refused"),
        ("http://jira.driftgate-test.invalid", "DNS: the host name does not resolve"),
        ("http://127.0.0.1:{silent}", "timed out after 1s"),
    ],
)
def test_probe_names_the_cause(url, cause, silent_port):
    conn = Connection(
        url=url.format(closed=closed_port(), silent=silent_port),
        user="u",
        token=SECRET,
        timeout_s=1,
    )
    problem = probe("jira", conn).problem
    assert problem is not None and problem.cause.startswith(cause)
    assert problem.hint == "check JIRA_URL" and SECRET not in problem.line()


def test_probe_accepts_good_credentials_basic_or_bearer(serve):
    emulator = serve(HANDMADE, require_token=SECRET)
    name = json.loads((HANDMADE / "manifest.json").read_text())["name"]
    good = Connection(url=f"{emulator.url}/wiki", user="svc", token=SECRET)
    assert probe("confluence", good) == Reach(None, f"sandbox:{name}")
    elsewhere = serve(HANDMADE)  # the same organisation on another port: the same instance
    assert probe("jira", Connection(url=elsewhere.url, user="u", token="t")).instance == (
        f"sandbox:{name}"
    )
    bearer = Connection(url=f"{emulator.url}/wiki", user="", token=SECRET)  # a PAT
    assert probe("confluence", bearer).problem is None
    token_only = Connection(url=emulator.url, user="", token=SECRET)
    assert probe("gitlab", token_only).problem is None  # PRIVATE-TOKEN


def test_a_busy_server_is_asked_again_a_few_times_then_named(serve):
    waits = []
    busy = serve(HANDMADE, faults="429=1.0,seed=1")
    reach = probe("jira", Connection(url=busy.url, user="u", token="t"), sleep=waits.append)
    assert reach.problem is not None and reach.problem.cause == "HTTP 429 from the server"
    assert len(waits) == 2 and all(w <= 10 for w in waits)  # three attempts, seconds apart
    answers = iter([503, 502, 200])  # down for two requests, then up

    class Recovering(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's API
            self.send_response(next(answers))
            self.end_headers()

        def log_message(self, *args):
            pass

    recovering = http.server.HTTPServer(("127.0.0.1", 0), Recovering)
    threading.Thread(target=recovering.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{recovering.server_port}"
        reach = probe("gitlab", Connection(url=url, user="", token="t"), sleep=waits.append)
    finally:
        recovering.shutdown()
    assert reach == Reach(None, url)  # the third answer counts


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (403, {}, "gitlab (h): 403 Forbidden: the account may not read this; "
                  "check the permissions of GITLAB_TOKEN's account"),
        (404, {}, "gitlab (h): 404 Not Found at /api/v4/user; "
                  "check that GITLAB_URL is the site's base URL"),
        (302, {"Location": "https://sso.example.com/login"},
         "gitlab (h): HTTP 302 redirect to sso.example.com; check GITLAB_URL (https, context path)"),
        (503, {}, "gitlab (h): HTTP 503 from the server"),
    ],
)  # fmt: skip
def test_http_answers_that_are_not_data_are_named(status, headers, expected):
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    response.url = "http://h/api/v4/user"
    assert http_problem("gitlab", "h", response).line() == expected


def test_a_server_written_two_ways_is_one_instance():
    assert normalise_url("HTTPS://Jira.Example.com:443/jira/") == "https://jira.example.com/jira"
    assert normalise_url("http://user:pw@gitlab.local:8080") == "http://gitlab.local:8080"
    assert normalise_url("https://a.atlassian.net/wiki") != normalise_url(
        "https://b.atlassian.net/wiki"
    )
