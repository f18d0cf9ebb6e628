"""The status page's tables: every cell escaped and cut, every table capped."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

MAX_ROWS = 5000  # beyond this the page gets slow to open; /metrics has everything
MAX_CELL = 300  # characters of one value shown; /metrics and the log have them whole


def cut(text: str) -> str:
    """A value as a cell shows it: at most MAX_CELL characters, then an ellipsis."""
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def table(title: str, heads: tuple[str, ...], rows: Sequence[tuple[bool, tuple[str, ...]]]) -> str:
    """A titled table of at most MAX_ROWS rows, saying how many more there are; rows marked
    down are shaded. Every cell is escaped."""
    if not rows:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in heads)
    body = "\n".join(
        f'<tr class="{"up" if up else "down"}">'
        + "".join(f"<td>{escape(cut(c))}</td>" for c in cells)
        + "</tr>"
        for up, cells in rows[:MAX_ROWS]
    )
    more = len(rows) - MAX_ROWS
    note = f"<p>{more} more rows not shown; /metrics has them all.</p>\n" if more > 0 else ""
    return (
        f'<h2>{escape(title)} ({len(rows)})</h2>\n<div class="scroll"><table><tr>{head}</tr>\n'
        f"{body}\n</table></div>\n{note}"
    )


def flag(value: bool | None) -> str:
    """A yes/no cell; empty when not known."""
    return "" if value is None else ("yes" if value else "no")
