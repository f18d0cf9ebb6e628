"""The 100,000-object goals, before and after, on this machine in one run:
``python -m bench.goals [--before REV]``.

The fleet of the goals: 100 projects found through one account, each with 990 image servers
and 10 dev-server images (99% image servers), a scraper asking for gzip. ``bench.node``
measures it three times, each in a process of its own: with the exporter of ``--before``
(the code before this work, taken from git; this bench's own harness drives it), with this
tree's, and with this tree's dropping the timestamp families (``--metric-denylist``).
Prints a JSON line for each, then each goal with its values and whether it is met.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "9efb180"  # main before the first change for these goals (series selection)
TIMESTAMPS = ".*_timestamp_seconds"

# (what, the bench.node field, the goal, whether a value meets it)
Goal = tuple[str, str, str, Callable[[float], bool]]
GOALS: tuple[Goal, ...] = (
    ("CPU per object per warm cycle", "cpu_us_per_object", "<= 5 µs", lambda v: v <= 5),
    ("peak RSS", "peak_rss_mb", "<= 400 MB", lambda v: v <= 400),
    ("first snapshot after its answers", "first_publish_s", "<= 2.5 s", lambda v: v <= 2.5),
    ("worst event loop stall", "worst_loop_stall_ms", "<= 50 ms", lambda v: v <= 50),
)


def _point(cwd: Path, fleet: list[str], *extra: str) -> dict[str, Any]:
    """One bench.node point, run from ``cwd`` (whose ``exporter`` package it measures)."""
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    out = subprocess.run(
        [sys.executable, "-m", "bench.node", *fleet, *extra],
        cwd=cwd, env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def _requests(point: dict[str, Any]) -> dict[str, Any]:
    """``bench.requests`` for as many calls and objects as a warm cycle of ``point``."""
    counts = ["--requests", str(point["api_calls"]), "--objects", str(point["targets"])]
    out = subprocess.run(
        [sys.executable, "-m", "bench.requests", *counts],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def _before(rev: str, into: Path) -> Path:
    """A folder holding the exporter package of ``rev`` and this tree's bench."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "exporter"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "bench").symlink_to(ROOT / "bench")
    return into


def _value(point: dict[str, Any], field: str) -> float | None:
    value = point.get(field)
    # The code before the goals had no first_publish_s: its whole first cycle stands in.
    if value is None and field == "first_publish_s":
        value = point.get("first_snapshot_s")
    return None if value is None else float(value)


def rows(points: dict[str, dict[str, Any]]) -> list[list[str]]:
    """A header, each goal with each point's value and whether it is met, and the series
    per object."""
    names = list(points)
    table = [["goal", "target", *names]]
    for what, field, target, met in GOALS:
        values = [_value(points[name], field) for name in names]
        table.append([what, target] + [
            "n/a" if v is None else f"{v:g} {'met' if met(v) else 'NOT met'}" for v in values
        ])  # fmt: skip
    table.append(["series per object", ""] + [
        str(points[n].get("series_per_object", "n/a")) for n in names
    ])  # fmt: skip
    return table


def report(points: dict[str, dict[str, Any]]) -> list[str]:
    """The table as plain text."""
    return [f"{r[0]:<36}{r[1]:>11}" + "".join(f"{c:>26}" for c in r[2:]) for r in rows(points)]


def floor_line(floor: dict[str, Any]) -> str:
    """What the cycle's requests alone cost (``bench.requests``)."""
    return (
        f"The floor: {floor['requests']:,} GETs of {floor['page_bytes']:,} bytes through a bare "
        f"aiohttp client (`python -m bench.requests`) cost {floor['cpu_us_per_request']} µs "
        f"of CPU each, {floor['cpu_us_per_object']} µs per object of the cycle."
    )


def markdown(points: dict[str, dict[str, Any]], floor: dict[str, Any]) -> str:
    """The table for docs/benchmarks.md, and the floor under it."""
    head, *body = rows(points)
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join([*lines, "", floor_line(floor)])


def main() -> None:
    """Measure the three points and print the table, then all of them as one JSON line."""
    p = argparse.ArgumentParser(prog="python -m bench.goals", description=__doc__)
    p.add_argument("--before", default=BEFORE, help=f"the git revision before (default {BEFORE})")
    p.add_argument("--projects", default="100", help="a smaller fleet, to try the bench")
    p.add_argument("--servers", default="990", help="image servers per project")
    p.add_argument("--images", default="10", help="dev-server images per project")
    p.add_argument("--scrape-seconds", default="5", help="each scraping phase of a point")
    args = p.parse_args()
    fleet = ["--projects", args.projects, "--servers", args.servers, "--images", args.images]
    fleet += ["--account", "--scrapers", "2", "--scrape-seconds", args.scrape_seconds]
    points: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        points[f"before ({args.before})"] = _point(_before(args.before, Path(tmp)), fleet)
    points["after"] = _point(ROOT, fleet)
    points["after, timestamps denied"] = _point(ROOT, fleet, "--metric-denylist", TIMESTAMPS)
    floor = _requests(points["after"])
    for name, point in points.items():
        print(json.dumps({"point": name, **point}))
    print("\n".join(report(points)))
    print(floor_line(floor))
    print(json.dumps({"points": points, "floor": floor}))


if __name__ == "__main__":
    main()
