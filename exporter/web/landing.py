"""The landing page at ``/``: a status page for a fleet.

Counts by resource and status at the top (each a filter), then every target in one table:
rows coloured by state (ERROR red, transitional amber, gone grey, a failing poll marked),
sortable by any column and filterable by text, with ages relative to the page ("12 min")
and each image server's last build job, with the error message when it failed. Rendered
on the server; the inline script only sorts and filters what is already there. Every
string from the cloud is escaped, in text and in attributes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from exporter import __version__
from exporter.domain.jobs import DURATION_BUCKETS, IN_FLIGHT_STATUSES, LONG_BUILD, SubJob
from exporter.domain.state import (
    DEVSERVER_IMAGE_STATUSES,
    IMAGE_SERVER_STATUSES,
    TRANSITIONAL_STATUSES,
    DevServerImage,
    Snapshot,
    TargetState,
)
from exporter.domain.targets import Resource
from exporter.domain.usage import ImageUse
from exporter.web.assets import SCRIPT, STYLE, TARGET_COLUMN_WIDTHS
from exporter.web.attention import RESOURCE_NAMES, needs_attention
from exporter.web.tables import MAX_ROWS, cut, flag, table

SLICE = 500  # rows rendered between two yields to the event loop
KNOWN = {
    Resource.IMAGE_SERVER: IMAGE_SERVER_STATUSES,
    Resource.DEVSERVER_IMAGE: DEVSERVER_IMAGE_STATUSES,
}
TITLES = {Resource.IMAGE_SERVER: "Image servers", Resource.DEVSERVER_IMAGE: "Dev-server images"}
# (heading, sorts as a number); the widths are the style's (TARGET_COLUMN_WIDTHS)
COLUMNS = (
    ("Resource", False), ("Project", False), ("ID", False), ("Name", False),
    ("Status", False), ("Since", True), ("Poll", False), ("Last success", True),
    ("Origin", False), ("Last job / last error", False),
)  # fmt: skip


CARD_LABELS = {9: "Job / error"}  # a phone's card labels its values in one short line
# On a desktop each row is one line and a long value is cut with an ellipsis: these cells
# carry their whole text as a title, shown on hover (and copied whole from the cell).
WHOLE_ON_HOVER = frozenset({1, 2, 3, 9})

assert len(COLUMNS) == len(TARGET_COLUMN_WIDTHS)


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def age(seconds: float) -> str:
    """A short, rounded-down age: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(s // 3600, 24)
    return f"{d} d {h} h" if h else f"{d} d"


class _Page:
    """Renders one snapshot at one moment."""

    def __init__(self, snapshot: Snapshot, now: float) -> None:
        self.snapshot = snapshot
        self.now = now
        self.last_jobs = {
            (j.project_id, sub.resource_id): sub for j in snapshot.jobs for sub in j.latest
        }
        self.project_names = {p.id: p.name for p in snapshot.projects if p.name}

    def when(self, ts: float | None) -> tuple[str, str, str]:
        """Text, sort key and tooltip of a moment."""
        if ts is None:
            return "never", "", ""
        return f"{age(self.now - ts)} ago", f"{ts:.0f}", _utc(ts)

    def cell(
        self, n: int, text: str, sort: str | None = None, title: str = "", html: str = ""
    ) -> str:
        """Column ``n``'s cell; its heading goes along as the label of a phone's card."""
        attrs = f' data-label="{escape(CARD_LABELS.get(n, COLUMNS[n][0]))}"'
        if sort is not None:
            attrs += f' data-sort="{escape(sort)}"'
        title = title or (text if n in WHOLE_ON_HOVER else "")
        if title:
            attrs += f' title="{escape(cut(title))}"'
        return f"<td{attrs}>{html or escape(cut(text))}</td>"

    def job(self, sub: SubJob | None) -> tuple[str, str]:
        """Text and HTML of an image server's last job: ``BUILD_IMAGE RUNNING for 2 h``,
        ``CREATE_SERVER WAITING``, ``BUILD_IMAGE FAILED WKS.0500, ended 5 min ago``."""
        if sub is None:
            return "", ""
        text = " ".join(p for p in (sub.job_type, sub.status, sub.error_code) if p)
        if sub.in_flight:
            if sub.status == "RUNNING" and sub.begin is not None:
                text += f" for {age(self.now - sub.begin)}"
        elif sub.end is not None:
            text += f", ended {age(self.now - sub.end)} ago"
        html = escape(cut(text))
        if sub.failed and sub.error_message:
            text += " " + sub.error_message
            html += f'<span class="message">{escape(cut(sub.error_message))}</span>'
        return text, html

    def row(self, t: TargetState) -> str:
        obj, key = t.obj, t.key
        gone = t.exists is False
        status = obj.status if obj is not None else ("(deleted)" if gone else "")
        name = obj.name if obj is not None else t.last_name
        states = [f"{key.resource.value}:{'gone' if gone else status}"]
        classes = []
        if gone:
            classes.append("s-gone")
        elif status == "ERROR":
            classes.append("s-error")
        elif status in TRANSITIONAL_STATUSES:
            classes.append("s-busy")
        if not t.up:
            classes.append("failing")
            states.append("failing")
        since, since_key, since_title = self.when(t.status_since)
        since = since.removesuffix(" ago")  # under "Since", "12 min" says it all
        success, success_key, success_title = self.when(t.last_success)
        # A target never seen has no job of its own to show yet.
        seen = obj is not None or gone
        job = self.last_jobs.get((key.project_id, key.id)) if seen else None
        job_text, job_html = self.job(job)
        if not t.up:
            error = t.error or "no answer yet"
            job_html = f'<span class="message">poll failing: {escape(cut(error))}</span>' + job_html
            job_text = f"poll failing: {error} {job_text}"
        poll = '<span class="badge">failing</span>' if not t.up else "up"
        project = self.project_names.get(key.project_id, "")
        shown_project = f"{project} ({key.project_id})" if project else key.project_id
        cells = (
            self.cell(0, key.resource.value.replace("_", " ")),
            self.cell(1, shown_project),
            self.cell(2, key.id),
            self.cell(3, name),
            self.cell(4, status),
            self.cell(5, since if t.status_since is not None else "", since_key, since_title),
            self.cell(6, "", html=poll),
            self.cell(7, success, success_key, success_title),
            self.cell(8, t.origin.value),
            self.cell(9, job_text, html=job_html),
        )
        css = f' class="{" ".join(classes)}"' if classes else ""
        return f'<tr{css} data-state="{escape(" ".join(states))}">{"".join(cells)}</tr>'

    def summary(self) -> str:
        """Counts by resource and status; each one filters the table."""
        counts: Counter[str] = Counter()
        failing = 0
        for t in self.snapshot.targets:
            gone = t.exists is False
            status = t.obj.status if t.obj is not None else ("" if not gone else "gone")
            if status:
                counts[f"{t.key.resource.value}:{'gone' if gone else status}"] += 1
            failing += not t.up
        lines = []
        for resource, known in KNOWN.items():
            prefix = f"{resource.value}:"
            mine = {k.removeprefix(prefix): n for k, n in counts.items() if k.startswith(prefix)}
            if not mine:
                continue
            order = [*(s for s in known if s in mine), *sorted(set(mine) - set(known))]
            buttons = "".join(_chip(f"{prefix}{s}", s, mine[s], _colour(s)) for s in order)
            lines.append(f"<div><strong>{TITLES[resource]}</strong> {buttons}</div>")
        if failing:
            lines.append(_chip("failing", "poll failing", failing, "failing"))
        return f'<div class="summary">{"".join(lines)}</div>' if lines else ""

    def shown(self) -> list[TargetState]:
        """The targets in the table, trouble first, at most MAX_ROWS."""
        ordered = sorted(self.snapshot.targets, key=lambda t: (_rank(t), t.key.resource, t.key.id))
        return ordered[:MAX_ROWS]

    def targets(self, rows: list[str]) -> str:
        """The targets table around its already rendered rows."""
        total = len(self.snapshot.targets)
        more = total - len(rows)
        note = f"<p>{more} more targets not shown; /metrics has them all.</p>" if more > 0 else ""
        cols = "<col>" * len(COLUMNS)
        heads = "".join(
            f'<th data-col="{n}"{" data-type=number" if numeric else ""}>{escape(h)}</th>'
            for n, (h, numeric) in enumerate(COLUMNS)
        )
        body = "\n".join(rows)
        return (
            f"<h2>Targets ({total})</h2>\n{self.summary()}\n"
            '<div class="controls"><label>Filter: <input id="filter" type="search" '
            'placeholder="name, ID, status, error…" autocomplete="off"></label> '
            f'<span class="muted"><span id="shown">{len(rows)}</span> shown</span></div>\n'
            f'<table id="targets"><colgroup>{cols}</colgroup><thead><tr>{heads}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table>{note}\n"
        )

    def jobs(self) -> str:
        rows = []
        for j in self.snapshot.jobs:
            counts: Counter[str] = Counter()
            for (_, status), n in j.in_flight:
                counts[status] += n
            text, _, _ = self.when(j.last_success)
            rows.append((
                j.up,
                (j.project_id, "up" if j.up else "down",
                 *(str(counts[s]) for s in IN_FLIGHT_STATUSES),
                 str(sum(n for _, n in j.failures)), text, j.error or "" if not j.up else ""),
            ))  # fmt: skip
        heads = ("Project", "Job lists", "Waiting", "Running", "Failures counted",
                 "Last read", "Last error")  # fmt: skip
        return table("Image build jobs", heads, rows)

    def builds(self) -> str:
        """The jobs now WAITING or RUNNING, the longest first, and how long ended ones took."""
        running = sorted(
            ((j.project_id, job) for j in self.snapshot.jobs for job in j.started),
            key=lambda pj: (pj[1].begin is None, pj[1].begin or 0.0),
        )
        rows = [
            (job.begin is None or self.now - job.begin <= LONG_BUILD,
             (pid, job.id, job.job_type, job.status,
              age(self.now - job.begin) if job.begin is not None else ""))
            for pid, job in running
        ]  # fmt: skip
        heads = ("Project", "Job", "Type", "Status", "Running for")
        return table("Running builds", heads, rows) + self._durations()

    def _durations(self) -> str:
        rows = []
        for j in self.snapshot.jobs:
            last = _last_durations(j.latest)
            for (kind, status), (per_bucket, total) in j.durations:
                count = sum(per_bucket)
                rows.append((
                    status == "SUCCESS",
                    (j.project_id, kind, status, str(count), _typical(per_bucket),
                     age(total / count) if count else "", last.get((kind, status), "")),
                ))  # fmt: skip
        heads = ("Project", "Type", "Status", "Ended", "Typical (median)", "Mean",
                 "Last (of a watched server)")  # fmt: skip
        return table("Build durations", heads, rows)

    def images_in_use(self) -> str:
        """Each image the dev servers of a swept project run, and each watched one they do
        not: INACTIVE images still in use first, then the most used."""
        snap = self.snapshot
        swept = {u.project_id for u in snap.usage if u.last_success is not None}
        images = {
            (t.key.project_id, t.key.id): t.obj
            for t in snap.targets
            if t.key.project_id in swept and isinstance(t.obj, DevServerImage)
        }
        found: list[tuple[tuple[bool, int, str, str], tuple[bool, tuple[str, ...]]]] = []
        for u in snap.usage:
            if u.last_success is None:
                continue
            for use in (*u.in_use, *(ImageUse(i, (), True) for i in u.idle)):
                obj = images.get((u.project_id, use.image_id)) if use.watched else None
                status = obj.status if obj is not None else ""
                alarm = status == "INACTIVE" and use.in_use > 0
                by_status = ", ".join(f"{n} {s}" for s, n in use.servers)
                image_id = use.image_id or "(none)"
                # What a phone shows without scrolling first: the image and its use.
                cells = ((obj.name if obj else "") or image_id, status, str(use.in_use),
                         by_status or "no server", "yes" if use.watched else "no", image_id,
                         u.project_id)  # fmt: skip
                found.append(((not alarm, -use.in_use, u.project_id, use.image_id),
                              (not alarm and u.up, cells)))  # fmt: skip
        found.sort(key=lambda f: f[0])
        rows = [row for _, row in found]
        heads = ("Image", "Image status", "Servers using it", "Servers by status", "Watched",
                 "Image ID", "Project")  # fmt: skip
        return table("Dev servers per image", heads, rows)

    def accounts(self) -> str:
        rows = [
            (a.up, (a.name, "up" if a.up else "down",
                    str(a.projects if a.projects is not None else ""),
                    self.when(a.last_success)[0], a.error or "" if not a.up else ""))
            for a in self.snapshot.accounts
        ]  # fmt: skip
        heads = ("Account", "Project list", "Projects", "Last success", "Last error")
        return table("Accounts", heads, rows)

    def sweeps(self) -> str:
        rows = []
        for resource, project_id, sw in sorted(
            self.snapshot.list_sweeps(), key=lambda r: (r[2].up, r[1], r[0])
        ):
            state = "not offered" if sw.unavailable_until else ("up" if sw.up else "down")
            rows.append((
                sw.up or bool(sw.unavailable_until),
                (RESOURCE_NAMES.get(resource, resource), project_id, state,
                 str(sw.objects if sw.objects is not None else ""),
                 str(sw.pages), flag(sw.complete), flag(sw.list_allowed),
                 self.when(sw.last_success)[0], sw.error or "" if not sw.up else ""),
            ))  # fmt: skip
        heads = ("Resource", "Project", "Sweep", "Objects", "Pages", "Complete", "List allowed",
                 "Last success", "Last error")  # fmt: skip
        return table("Sweeps", heads, rows)


def _typical(per_bucket: Sequence[int]) -> str:
    """The median duration as its histogram bucket tells it: "≤ 5 min", "> 1 d"."""
    half, seen = sum(per_bucket) / 2, 0
    for bound, n in zip(DURATION_BUCKETS, per_bucket, strict=False):
        seen += n
        if seen >= half:
            return f"≤ {age(bound)}"
    return f"> {age(DURATION_BUCKETS[-1])}"


def _last_durations(latest: Sequence[SubJob]) -> dict[tuple[str, str], str]:
    """The duration of the most recent ended sub-job of each (type, status) among image
    servers' latest jobs."""
    last: dict[tuple[str, str], tuple[float, str]] = {}
    for sub in latest:
        seconds = sub.duration
        key = (sub.job_type, sub.status)
        if seconds is not None and (key not in last or sub.moment > last[key][0]):
            last[key] = (sub.moment, age(seconds))
    return {key: text for key, (_, text) in last.items()}


def _rank(t: TargetState) -> int:
    """Trouble first: failing polls, ERROR, transitional, then gone, then the rest."""
    status = t.obj.status if t.obj is not None else ""
    if not t.up:
        return 0
    if status == "ERROR":
        return 1
    if status in TRANSITIONAL_STATUSES:
        return 2
    return 3 if t.exists is False else 4


def _colour(status: str) -> str:
    if status == "ERROR":
        return "s-error"
    if status == "gone":
        return "s-gone"
    return "s-busy" if status in TRANSITIONAL_STATUSES else ""


def _chip(state: str, label: str, count: int, css: str) -> str:
    return (
        f'<button type="button" class="{css}" data-state="{escape(state)}" aria-pressed="false">'
        f"{escape(label)} <b>{count}</b></button>"
    )


def render_landing(snapshot: Snapshot, now: float | None = None) -> str:
    """The whole HTML page at once; every value from the cloud is escaped."""
    page = _Page(snapshot, time.time() if now is None else now)
    return _document(page, [page.row(t) for t in page.shown()])


async def render_landing_sliced(
    snapshot: Snapshot, now: float | None = None, notices: tuple[str, ...] = ()
) -> str:
    """``render_landing``, yielding to the event loop every SLICE rows: 10,000 rows take
    tens of milliseconds, which a scrape arriving meanwhile must not wait for. ``notices``
    are warnings about the exporter's own setup, shown first."""
    page = _Page(snapshot, time.time() if now is None else now)
    shown = page.shown()
    rows: list[str] = []
    for start in range(0, len(shown), SLICE):
        rows += [page.row(t) for t in shown[start : start + SLICE]]
        await asyncio.sleep(0)
    return _document(page, rows, notices)


def _document(page: _Page, rows: list[str], notices: tuple[str, ...] = ()) -> str:
    snapshot = page.snapshot
    poll = (
        f"last poll cycle finished {page.when(snapshot.last_poll_timestamp)[0]} "
        f"in {snapshot.last_poll_duration:.2f}s"
        if snapshot.last_poll_duration is not None
        else "first poll cycle in progress"
    )
    # The fleet's trouble first, then the exporter's own setup (which may be long: a metric
    # selection names every family it drops).
    trouble = needs_attention(snapshot, page.now)
    warnings = (
        f'<p class="attention" role="status">Needs attention: {escape(" · ".join(trouble))}</p>\n'
        if trouble else '<p class="calm" role="status">Nothing needs attention.</p>\n'
    )  # fmt: skip
    warnings += "".join(f'<p class="notice">{escape(n)}</p>\n' for n in notices)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Huawei Cloud image exporter</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>{STYLE}</style>
</head><body>
<h1>Huawei Cloud image exporter</h1>
{warnings}<p>Version {escape(__version__)}. Polls every {snapshot.interval:g}s; {escape(poll)}.
Ages are as of {escape(_utc(page.now))}. <label><input type="checkbox" id="refresh"
data-seconds="{max(snapshot.interval, 5.0):g}" checked> refresh every
{max(snapshot.interval, 5.0):g}s</label></p>
<p><a href="metrics">Metrics</a> · <a href="-/healthy">Health</a> ·
<a href="-/ready">Readiness</a></p>
{page.targets(rows)}{page.jobs()}{page.builds()}{page.images_in_use()}{page.accounts()}{page.sweeps()}<script>{SCRIPT}</script>
</body></html>
"""
