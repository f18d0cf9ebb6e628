"""The landing page at ``/``: version, links and the state of every target."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from exporter import __version__
from exporter.domain.state import Snapshot, TargetState

MAX_ROWS = 1000  # a page listing tens of thousands of rows helps nobody; failing ones first


def _when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _row(t: TargetState) -> str:
    obj = t.obj
    name = obj.name if obj is not None else ""
    status = obj.status if obj is not None else ("(deleted)" if t.exists is False else "")
    up = "up" if t.up else "down"
    cells = (
        t.key.resource.value,
        t.key.project_id,
        t.key.id,
        t.origin.value,
        name,
        status,
        _when(t.status_since) if t.status_since is not None else "",
        up,
        _when(t.last_success),
        t.error or "" if not t.up else "",
    )
    tds = "".join(f"<td>{escape(c)}</td>" for c in cells)
    return f'<tr class="{up}">{tds}</tr>'


def _table(title: str, heads: tuple[str, ...], rows: Sequence[tuple[bool, tuple[str, ...]]]) -> str:
    """A titled table; rows marked down are shaded. Every cell is escaped."""
    if not rows:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in heads)
    body = "\n".join(
        f'<tr class="{"up" if up else "down"}">'
        + "".join(f"<td>{escape(c)}</td>" for c in cells)
        + "</tr>"
        for up, cells in rows
    )
    return f"<h2>{escape(title)} ({len(rows)})</h2>\n<table><tr>{head}</tr>\n{body}\n</table>\n"


def _flag(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def _accounts(snapshot: Snapshot) -> str:
    rows = [
        (a.up, (a.name, "up" if a.up else "down", str(a.projects if a.projects is not None else ""),
                _when(a.last_success), a.error or "" if not a.up else ""))
        for a in snapshot.accounts
    ]  # fmt: skip
    heads = ("Account", "Project list", "Projects", "Last success", "Last error")
    return _table("Accounts", heads, rows)


def _sweeps(snapshot: Snapshot) -> str:
    rows = []
    for sw in sorted(snapshot.sweeps, key=lambda s: (s.up, s.key.project_id, s.key.resource)):
        state = "not offered" if sw.unavailable_until else ("up" if sw.up else "down")
        rows.append((
            sw.up or bool(sw.unavailable_until),
            (sw.key.resource.value, sw.key.project_id, state,
             str(sw.objects if sw.objects is not None else ""), str(sw.pages),
             _flag(sw.complete), _flag(sw.list_allowed), _when(sw.last_success),
             sw.error or "" if not sw.up else ""),
        ))  # fmt: skip
    heads = ("Resource", "Project", "Sweep", "Objects", "Pages", "Complete", "List allowed",
             "Last success", "Last error")  # fmt: skip
    return _table("Sweeps", heads, rows)


def render_landing(snapshot: Snapshot) -> str:
    """The whole HTML page; every value from the cloud is escaped."""
    ordered = sorted(snapshot.targets, key=lambda t: (t.up, t.key.resource, t.key.id))
    rows = "\n".join(_row(t) for t in ordered[:MAX_ROWS])
    more = len(ordered) - MAX_ROWS
    note = f"<p>{more} more targets not shown; see /metrics.</p>" if more > 0 else ""
    poll = (
        f"last poll cycle finished {_when(snapshot.last_poll_timestamp)} in "
        f"{snapshot.last_poll_duration:.2f}s"
        if snapshot.last_poll_duration is not None
        else "first poll cycle in progress"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Huawei Cloud image exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}tr.down{{background:#fdd}}</style>
</head><body>
<h1>Huawei Cloud image exporter</h1>
<p>Version {escape(__version__)}. Polls every {snapshot.interval:g}s; {escape(poll)}.</p>
<ul><li><a href="metrics">Metrics</a></li><li><a href="-/healthy">Health</a></li>
<li><a href="-/ready">Readiness</a></li></ul>
{_accounts(snapshot)}{_sweeps(snapshot)}<h2>Targets ({len(snapshot.targets)})</h2>
<table><tr><th>Resource</th><th>Project</th><th>ID</th><th>Origin</th><th>Name</th><th>Status</th>
<th>Status since</th><th>Poll</th>
<th>Last success</th><th>Last error</th></tr>
{rows}
</table>{note}
</body></html>
"""
