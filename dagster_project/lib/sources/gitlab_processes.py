"""Merge requests' ``/changes`` asked by processes of their own, when there are many.

A first nightly asks GitLab for one ``/changes`` per merge request: 88,179 of them at
100,000 issues. On the fetch step's threads each costs about a millisecond of the
client stack (python-gitlab, ``requests``, ``urllib3``) under the one interpreter lock
that the step's parsing, validation and raw-store writes also need, so the step ran on
one core while the other waited. Past ``PROCESSES_AFTER`` answers in a run, the step
starts ``in_flight`` worker processes (``spawn``: nothing of the parent's DuckDB
connections or threads is copied), each with its own ``GitlabSource`` over the same
connection and policy, and hands them the rest. A worker returns the body as GitLab sent
it, parsed once inside its retried call (a truncated answer is retried there as it is
here), and the number of requests it made; the step parses it again and stores it as it
would its own.

The in-flight bound holds across processes: the step's slots are a process-shared
semaphore (``inflight.step_slots``) the workers are started with, so the step's own
requests (the listing read ahead, the notes queries) and the workers' together never
exceed ``operations.requests_per_step``. A day's few changed merge requests never reach
the threshold and are asked in the step's threads, as before.
"""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from dagster_project.lib.connections import Connection
from dagster_project.lib.policy import Policy

# Answers asked in the step's own threads before its processes take over: a day after
# has tens, a first nightly tens of thousands.
PROCESSES_AFTER = 1_000

_source: Any = None  # the worker's own GitlabSource


def _start(conn: Connection, policy: Policy, slots: Any) -> None:
    from dagster_project.lib.sources.gitlab_source import GitlabSource

    global _source
    _source = GitlabSource(conn, policy, slots=slots, graphql=False)


def _body(path: str) -> tuple[bytes, int]:
    """The answer to GET ``path`` (JSON, checked inside the retried call) and the
    requests it took."""
    before = _source.requests
    body = _source.get_checked_body(path)
    return body, _source.requests - before


class ChangesProcesses:
    """``workers`` processes asking GitLab for JSON bodies, in the order given."""

    def __init__(self, conn: Connection, policy: Policy, slots: Any, workers: int):
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(conn, policy, slots),
        )

    def get_json(self, paths: list[str]) -> tuple[list[Any], int]:
        """The parsed answers in ``paths``' order and the requests they took. The first
        failure in that order is raised, as the serial loop would raise it."""
        futures = [self._pool.submit(_body, path) for path in paths]
        answers: list[Any] = []
        made = 0
        try:
            for future in futures:
                body, requests = future.result()
                answers.append(json.loads(body))
                made += requests
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return answers, made

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
