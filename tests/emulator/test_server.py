"""The sandbox server keeps connections alive as real servers do, without ever reading one
request's leftovers as the next request, and closes a connection when it must."""

from __future__ import annotations

import http.client
import shutil
import socket
from urllib.parse import urlsplit

import pytest
import requests

from dagster_project.sandbox import runtime
from tests.conftest import HANDMADE

INFO = "/rest/api/2/serverInfo"


def test_a_session_reuses_one_connection(serve):
    running = serve(HANDMADE)
    with requests.Session() as session:
        answers = [session.get(running.url + INFO, timeout=10) for _ in range(20)]
    assert all(a.status_code == 200 for a in answers)
    assert len({a.text for a in answers}) == 1
    assert all("close" not in a.headers.get("Connection", "") for a in answers)
    assert running.server.connections_accepted == 1


def test_an_unread_request_body_is_not_read_as_the_next_request(serve):
    """A write to the read-only sandbox is refused before its body is read: the body is
    drained, and the next request on the same connection is answered as itself."""
    running = serve(HANDMADE)
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    body = b'{"fields": {"summary": "GET /rest/api/2/myself HTTP/1.1"}}' * 200
    conn.request(
        "POST", "/rest/api/2/issue", body=body, headers={"Content-Type": "application/json"}
    )
    refused = conn.getresponse()
    refused.read()
    assert refused.status in (403, 404, 405)
    conn.request("GET", INFO)
    info = conn.getresponse()
    assert info.status == 200
    assert "baseUrl" in info.read().decode()
    conn.close()
    assert running.server.connections_accepted == 1


def test_client_asking_to_close_gets_its_connection_closed(serve):
    running = serve(HANDMADE)
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    conn.request("GET", INFO, headers={"Connection": "close"})
    answer = conn.getresponse()
    assert answer.getheader("Connection") == "close"
    answer.read()
    assert answer.will_close


def test_a_truncated_answer_closes_its_connection(serve):
    """The client learns the body ended short only because the server closes."""
    running = serve(HANDMADE, faults="truncate=1.0")
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    conn.request("GET", INFO)
    answer = conn.getresponse()
    declared = int(answer.getheader("Content-Length"))
    with pytest.raises(http.client.IncompleteRead) as cut:
        answer.read()
    assert len(cut.value.partial) < declared


def test_a_reset_drops_the_connection_and_the_next_one_is_served(serve):
    running = serve(HANDMADE, faults="reset=1.0")
    with requests.Session() as session, pytest.raises(requests.ConnectionError):
        session.get(running.url + INFO, timeout=10)
    running.app.faults = None
    assert requests.get(running.url + INFO, timeout=10).status_code == 200


def test_a_stopped_emulator_serves_no_kept_connection(serve):
    running = serve(HANDMADE)
    with requests.Session() as session:
        assert session.get(running.url + INFO, timeout=10).status_code == 200
        running.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(running.url + INFO, timeout=5)


def test_an_idle_connection_stays_usable_between_requests(serve):
    running = serve(HANDMADE)
    sock = socket.create_connection(("127.0.0.1", running.port), timeout=10)
    request = f"GET {INFO} HTTP/1.1\r\nHost: sandbox\r\n\r\n".encode()
    replies = []
    for _ in range(2):
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += sock.recv(65536)
        replies.append((head.split(b"\r\n", 1)[0], body))
    sock.close()
    assert [status for status, _ in replies] == [b"HTTP/1.1 200 OK"] * 2
    assert replies[0][1] == replies[1][1]


def test_the_sandbox_serves_a_dataset_at_the_same_address_in_every_run(tmp_path):
    """Payloads carry links to the server: at a new address each run, a night with
    nothing new would store spaces and pages again. If the address is taken, any free
    port serves."""
    data = tmp_path / "org"
    shutil.copytree(HANDMADE, data)
    port = runtime.preferred_port(data)
    runtime.stop_all()
    try:
        first = runtime.sandbox_url(data)
        runtime.stop_all()  # as the next run would find it
        assert runtime.sandbox_url(data) == first
        assert urlsplit(first).port == port
        runtime.stop_all()
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", port))
            taken.listen()
            other = runtime.sandbox_url(data)
            assert urlsplit(other).port != port
            assert requests.get(other + INFO, timeout=10).ok
    finally:
        runtime.stop_all()
