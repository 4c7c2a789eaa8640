"""What a person running the nightly job reads: a line per source, a line per failure,
and the full event log (tracebacks included) in a file.

Dagster's console logger prints every event, and a failed step's whole traceback; the
command line turns it down and reads the run's events from the instance instead.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from dagster_project.lib.retry import scrub

SECRET_VARS = ("JIRA_TOKEN", "GITLAB_TOKEN", "CONFLUENCE_TOKEN")
_FINISHED = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}


def _secrets() -> tuple[str, ...]:
    return tuple(v for v in (os.environ.get(n) for n in SECRET_VARS) if v)


def _first_line(text: str) -> str:
    stripped = (text or "").strip()
    return stripped.splitlines()[0] if stripped else ""


def failure_lines(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """One line per failed step: a source failure's own line (``jira (host): cause;
    hint``), else the step and the first line of its error."""
    lines = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        data = event.step_failure_data
        described = data.user_failure_data.description if data.user_failure_data else None
        if described:
            lines.append(_first_line(described))
        else:
            message = _first_line(data.error.message if data.error else "") or "failed"
            lines.append(f"{event.step_key}: {message}")
    return [scrub(line, _secrets()) for line in lines]


def write_run_log(instance: dg.DagsterInstance, run_id: str, path: Path) -> None:
    """Every event of the run, with the full error of each failure, secrets scrubbed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for record in instance.all_logs(run_id):
        when = datetime.fromtimestamp(record.timestamp, UTC).isoformat(timespec="milliseconds")
        step = record.step_key or "-"
        level = _level_name(record.level)
        message = record.user_message or (
            record.dagster_event.message if record.dagster_event else ""
        )
        out.append(f"{when} {level:<7} {step} {message}")
        event = record.dagster_event
        if event is not None and event.is_step_failure:
            error = event.step_failure_data.error
            if error is not None:
                out.append(error.to_string())
    path.write_text(scrub("\n".join(out) + "\n", _secrets()), encoding="utf-8")


def _level_name(level: Any) -> str:
    return logging.getLevelName(level) if isinstance(level, int) else str(level)


class RunWatcher:
    """Prints, while the run goes on, what a person watching it needs: each raw source's
    lines (its summary, or why it was skipped), one line each."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, *, echo: bool, every_s=0.5):
        self.instance, self.run_id, self.echo, self.every_s = instance, run_id, echo, every_s
        self._cursor: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RunWatcher:
        if self.echo:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.echo:
            self._stop.set()
            self._thread.join(timeout=10)
            self._print_new()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self._print_new()

    def _print_new(self) -> None:
        """The events since the last look (a cursor: a long run's log is not read again
        every half second)."""
        while True:
            try:
                page = self.instance.get_records_for_run(self.run_id, cursor=self._cursor)
            except Exception:  # the run's storage may not exist yet
                return
            for record in page.records:
                line = self._line(record.event_log_entry)
                if line:
                    print(scrub(line, _secrets()), flush=True)
            self._cursor = page.cursor
            if not page.has_more:
                return

    @staticmethod
    def _line(record: Any) -> str | None:
        if record.dagster_event is not None or not record.user_message:
            return None
        step = record.step_key or ""
        engine = record.user_message.startswith("Dependencies for step")
        if step.startswith("raw__") and record.level >= logging.INFO and not engine:
            return _first_line(record.user_message)
        return None
