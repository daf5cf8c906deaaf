"""Collect the run's events into a summary, and render it as text or JSON.

Only task names, host names, timings, counts and failure messages are kept:
never module arguments or results, and a no_log result's message is replaced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from reforge.secrets import Scrubber

HIDDEN = "(output hidden: the task has no_log)"
SLOWEST = 5
# Summary column -> key of ansible's playbook_on_stats event.
STAT_KEYS = {
    "ok": "ok",
    "changed": "changed",
    "failed": "failures",
    "unreachable": "dark",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}
# How a role's argument-spec validation opens its message, one error per line after it.
ARGUMENT_ERRORS = "Validation of arguments failed:"
TIMED_EVENTS = {"runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"}
# The doctor role publishes its findings (set_stats) under these names, keyed by host.
DOCTOR_REPORT = "doctor_report"
DOCTOR_SUMMARY = "doctor_summary"
DOCTOR_STATS = (DOCTOR_REPORT, DOCTOR_SUMMARY)
# Terminal colours for the doctor's statuses (SGR codes); none when not on a terminal.
STATUS_COLOURS = {"FAIL": "1;31", "WARN": "33", "OK": "32", "SKIP": "2"}


@dataclass
class TaskTime:
    task: str
    host: str
    seconds: float


@dataclass
class Failure:
    task: str
    host: str
    msg: str
    unreachable: bool = False


def _hidden(res: Mapping[str, Any]) -> bool:
    return bool(res.get("_ansible_no_log")) or "censored" in res


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _first_item_msg(results: list[Any]) -> str:
    for item in results:
        if isinstance(item, Mapping) and item.get("failed"):
            return HIDDEN if _hidden(item) else _text(item.get("msg", ""))
    return ""


def failure_message(res: Mapping[str, Any]) -> str:
    """The msg of a failed or unreachable result, and nothing else of it."""
    if _hidden(res):
        return HIDDEN
    msg = _text(res.get("msg", "")).strip()
    if msg.startswith(ARGUMENT_ERRORS):
        # A refused value is reported on one line, whatever the number of errors.
        msg = " ".join(line.strip() for line in msg.splitlines() if line.strip())
    results = res.get("results")
    if isinstance(results, list):
        detail = _first_item_msg(results).strip()
        msg = f"{msg}: {detail}" if msg and detail else msg or detail
    return msg or "(no message)"


@dataclass
class Recorder:
    """Turns runner events into what the summary needs."""

    tasks_started: int = 0
    times: list[TaskTime] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    stats: dict[str, dict[str, int]] | None = None
    custom_stats: dict[str, Any] = field(default_factory=dict)

    def record(self, event: Mapping[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind in ("playbook_on_task_start", "playbook_on_handler_task_start"):
            self.tasks_started += 1
        if kind in TIMED_EVENTS and isinstance(data.get("duration"), (int, float)):
            self.times.append(TaskTime(data.get("task", ""), data.get("host", ""), float(data["duration"])))
        if kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.failures.append(_failure(data, unreachable=False))
        if kind == "runner_on_unreachable":
            self.failures.append(_failure(data, unreachable=True))
        if kind == "playbook_on_stats":
            self.stats = {key: dict(data.get(key) or {}) for key in STAT_KEYS.values()}
            # What the play published with set_stats (per_host: false): the
            # counterpart of ansible's CUSTOM STATS (show_custom_stats).
            self.custom_stats = dict(data.get("artifact_data") or {})


def _failure(data: Mapping[str, Any], *, unreachable: bool) -> Failure:
    res = data.get("res")
    message = failure_message(res if isinstance(res, Mapping) else {})
    return Failure(str(data.get("task", "")), str(data.get("host", "")), message, unreachable)


def host_counts(stats: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    hosts = sorted({host for counts in stats.values() for host in counts})
    return {host: {name: int(stats.get(key, {}).get(host, 0)) for name, key in STAT_KEYS.items()}
            for host in hosts}


def final_failures(failures: list[Failure], hosts: Mapping[str, Mapping[str, int]] | None) -> list[Failure]:
    """Drop failures a rescue block handled: a host's last N failures stand,
    N being its failed (or unreachable) count in ansible's final stats."""
    if hosts is None:
        return failures
    kept: set[int] = set()
    for host in dict.fromkeys(failure.host for failure in failures):
        for unreachable, column in ((False, "failed"), (True, "unreachable")):
            mine = [f for f in failures if f.host == host and f.unreachable is unreachable]
            count = hosts.get(host, {}).get(column, 0)
            kept |= {id(f) for f in mine[-count:]} if count else set()
    return [failure for failure in failures if id(failure) in kept]


@dataclass
class Summary:
    command: str
    playbook: str
    status: str
    rc: int
    elapsed_seconds: float
    tasks: int
    hosts: dict[str, dict[str, int]]
    slowest_tasks: list[TaskTime]
    failed_tasks: list[Failure]
    errors: list[str]
    custom_stats: dict[str, Any]
    artifacts: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_summary(recorder: Recorder, *, command: str, playbook: str, status: str, rc: int,
                  elapsed: float, errors: list[str], artifacts: str) -> Summary:
    hosts = host_counts(recorder.stats) if recorder.stats is not None else {}
    slowest = sorted(recorder.times, key=lambda item: item.seconds, reverse=True)[:SLOWEST]
    failures = final_failures(recorder.failures, hosts if recorder.stats is not None else None)
    # ansible's error lines only explain a run that failed outside any task.
    shown_errors = [] if recorder.failures else errors
    return Summary(
        command=command, playbook=playbook, status=status, rc=rc, elapsed_seconds=round(elapsed, 2),
        tasks=recorder.tasks_started, hosts=hosts,
        slowest_tasks=[TaskTime(t.task, t.host, round(t.seconds, 2)) for t in slowest],
        failed_tasks=failures, errors=shown_errors, custom_stats=recorder.custom_stats, artifacts=artifacts,
    )


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _host_table(hosts: Mapping[str, Mapping[str, int]]) -> list[str]:
    if not hosts:
        return ["  no host stats: ansible-playbook stopped before its recap, or no host matched"]
    width = max(len("host"), *(len(host) for host in hosts))
    header = "  " + "host".ljust(width) + "".join(f"  {name:>{len(name)}}" for name in STAT_KEYS)
    rows = [
        "  " + host.ljust(width) + "".join(f"  {counts[name]:>{len(name)}}" for name in STAT_KEYS)
        for host, counts in hosts.items()
    ]
    return [header, *rows]


def _indent_msg(msg: str) -> list[str]:
    return [f"      {line}" for line in msg.splitlines() if line.strip()]


def _stat_lines(name: str, value: Any) -> list[str]:
    """A list of strings (a report) prints one item a line; anything else on one line."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [f"  {name}:", *(f"    {item}" for item in value)]
    return [f"  {name}: {_text(value)}"]


def _paint(text: str, status: str, colour: bool) -> str:
    code = STATUS_COLOURS.get(status)
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def _doctor_lines(stats: Mapping[str, Any], colour: bool) -> list[str]:
    """The doctor's findings as a table, per host: status, check, detail, then its cause and fix."""
    reports = stats.get(DOCTOR_REPORT)
    totals = stats.get(DOCTOR_SUMMARY) if isinstance(stats.get(DOCTOR_SUMMARY), Mapping) else {}
    if not isinstance(reports, Mapping):
        return []
    lines: list[str] = []
    for host, entries in reports.items():
        entries = [entry for entry in entries or [] if isinstance(entry, Mapping)]
        total = totals.get(host) if isinstance(totals.get(host), Mapping) else None
        heading = f"doctor [{host}]"
        if total:
            heading += (f": {_paint(str(total.get('status', '')), str(total.get('status', '')), colour)}"
                        f" ({total.get('ok', 0)} OK, {total.get('warn', 0)} WARN, {total.get('fail', 0)} FAIL,"
                        f" {total.get('skip', 0)} SKIP)")
        lines.append(heading)
        width = max([len("check")] + [len(str(entry.get("check", ""))) for entry in entries])
        lines.append(f"  {'status':<6}  {'check':<{width}}  detail")
        for entry in entries:
            status = str(entry.get("status", ""))
            lines.append(f"  {_paint(f'{status:<6}', status, colour)}  {str(entry.get('check', '')):<{width}}  "
                         f"{entry.get('detail', '')}")
            for part in ("cause", "fix"):
                if entry.get(part):
                    lines.append(f"  {'':<6}  {'':<{width}}    {part}: {entry[part]}")
    return lines


def render_text(summary: Summary, colour: bool = False) -> list[str]:
    """The summary for a reader; `colour` paints the doctor's statuses (for a terminal)."""
    lines = [
        f"reforge {summary.command}: {summary.status} (exit {summary.rc}), "
        f"{summary.tasks} tasks in {format_duration(summary.elapsed_seconds)}",
        *_host_table(summary.hosts),
    ]
    if summary.slowest_tasks:
        lines.append("slowest tasks:")
        lines += [f"  {format_duration(t.seconds):>10}  {t.task} [{t.host}]" for t in summary.slowest_tasks]
    # The doctor's report comes before the failure it explains ("the report above").
    lines += _doctor_lines(summary.custom_stats, colour)
    if summary.failed_tasks:
        lines.append("failed tasks:")
        for failure in summary.failed_tasks:
            what = "unreachable" if failure.unreachable else "failed"
            lines += [f"  {failure.task} [{failure.host}] {what}:", *_indent_msg(failure.msg)]
    if summary.errors:
        lines.append("errors:")
        lines += [f"  {line}" for line in summary.errors]
    others = {name: value for name, value in summary.custom_stats.items()
              if name not in DOCTOR_STATS or not isinstance(value, Mapping)}
    if others:
        lines.append("custom stats:")
        for name, value in others.items():
            lines += _stat_lines(name, value)
    lines.append(f"artifacts: {summary.artifacts} (ansible's full output is in its stdout file)")
    return lines


def render_json(summary: Summary, scrubber: Scrubber) -> str:
    return json.dumps(scrubber.data(summary.to_dict()), indent=2)
