"""Show the run's progress from runner events: one live line on a terminal,
plain lines otherwise. Only play names, task names and hosts are shown."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TextIO

from reforge.secrets import Scrubber

CLEAR_LINE = "\r\x1b[K"
TASK_EVENTS = ("playbook_on_task_start", "playbook_on_handler_task_start")
RESULT_WORDS = {"runner_on_ok": "ok", "runner_on_skipped": "skipped"}


def terminal_width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError):
        return 80


class Progress:
    """Event handler that draws progress; `expected` is the task count of the
    last complete run of the same command, when known."""

    def __init__(self, stream: TextIO, *, live: bool, scrubber: Scrubber,
                 expected: int | None = None, verbose: bool = False) -> None:
        self.stream = stream
        self.live = live
        self.scrubber = scrubber
        self.expected = expected
        self.verbose = verbose
        self.count = 0
        self.task = ""
        self.host = ""
        self._drawn = False

    def handle(self, event: Mapping[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            self._line(f"play: {data.get('name') or data.get('play', '')}")
        elif kind in TASK_EVENTS:
            self._task_started(str(data.get("task") or data.get("name", "")))
        elif kind == "runner_on_start":
            self.host = str(data.get("host", ""))
            self._redraw()
        elif kind == "runner_on_failed":
            self._failed(data)
        elif kind == "runner_on_unreachable":
            self._line(f"unreachable: {data.get('task', '')} [{data.get('host', '')}]")
        elif self.verbose and kind in RESULT_WORDS:
            self._result(kind, data)

    def finish(self) -> None:
        if self.live and self._drawn:
            self._write(CLEAR_LINE)
            self._drawn = False

    def label(self) -> str:
        known = self.expected is not None and self.count <= self.expected
        counter = f"{self.count}/{self.expected}" if known else str(self.count)
        host = f" [{self.host}]" if self.host else ""
        return f"task {counter}: {self.task}{host}"

    def _task_started(self, name: str) -> None:
        self.count += 1
        self.task = name
        self.host = ""
        if self.live:
            self._redraw()
        else:
            self._line(self.label())

    def _failed(self, data: Mapping[str, Any]) -> None:
        where = f"{data.get('task', '')} [{data.get('host', '')}]"
        if not data.get("ignore_errors"):
            self._line(f"failed: {where}")
        elif self.verbose:
            self._line(f"  failed (ignored): {where}")

    def _result(self, kind: str, data: Mapping[str, Any]) -> None:
        res = data.get("res") or {}
        word = "changed" if isinstance(res, Mapping) and res.get("changed") else RESULT_WORDS[kind]
        self._line(f"  {word}: {data.get('task', '')} [{data.get('host', '')}]")

    def _redraw(self) -> None:
        if not self.live or not self.task:
            return
        text = self.scrubber.text(self.label())[: terminal_width(self.stream) - 1]
        self._write(CLEAR_LINE + text)
        self._drawn = True

    def _line(self, text: str) -> None:
        """A line that stays: on a terminal, printed above the live line."""
        prefix = CLEAR_LINE if self.live and self._drawn else ""
        self._write(prefix + self.scrubber.text(text) + "\n")
        self._drawn = False
        self._redraw()

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
