"""``python -m bench``: the exporter's costs at 100, 1,000 and 10,000 targets.

Runs ``bench.node`` once per size (each in a fresh process) and writes the results, the
machine and the command to ``docs/benchmarks.md``, with a plot in ``docs/benchmarks.png``.
All ratios compare figures measured in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import bench.goals
import bench.memory
from exporter.polling.usage import calls_needed

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"cycle_ratio": 1.15, "p99_ratio": 2.0, "worst_loop_stall_ms": 50.0, "peak_rss_mb": 200.0}
# Discovery at 100,000 objects: a warm cycle within calls.L/C + 2 s, and these.
DISCOVERY_GOALS = {
    "cpu_us_per_object": 20.0,
    "p99_ratio": 2.0,
    "worst_loop_stall_ms": 100.0,
    "healthy_max_ms": 150.0,
    "peak_rss_mb": 500.0,
}
STARTUP_GOAL_S = 1.0  # /-/healthy answered this soon with a state file of 100,000 objects


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )  # fmt: skip
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = int(next(line.split()[1] for line in meminfo if line.startswith("MemTotal")))
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem / 2**20:.0f} GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}, aiohttp {version('aiohttp')}, "
        f"prometheus-client {version('prometheus-client')}"
    )


def run_node(workload: list[str], args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "bench.node", *workload, "--latency", str(args.latency),
        "--concurrency", str(args.concurrency), "--scrape-seconds", str(args.scrape_seconds),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800, cwd=ROOT)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def run_module(module: str, *args: str) -> dict[str, Any]:
    """``python -m MODULE ARGS`` in a fresh process; its last line of output, as JSON."""
    cmd = [sys.executable, "-m", module, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=3600, cwd=ROOT)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def startup_section(r: dict[str, Any]) -> str:
    goal = "met" if (r["first_healthy_s"] or 1e9) <= STARTUP_GOAL_S else "MISSED"
    return (
        f"{r['objects']:,} objects in the state file; the first `/-/healthy` answered "
        f"{r['first_healthy_s']} s after the process was spawned (goal ≤ {STARTUP_GOAL_S:g} s): "
        f"{goal}. The slowest probe while the file was read took "
        f"{r['worst_healthy_ms_while_restoring']} ms; the restored objects were served after "
        f"{r['restored_s']} s, and `/-/ready` answered 200 after {r['ready_s']} s (the first "
        "cycle, against a cloud that refuses connections, marks them all down)."
    )


def shards_section(r: dict[str, Any]) -> str:
    head = (
        "| shard | objects | API calls (floor) | first snapshot (s) | cycle (s) "
        "| calls·L/C (s) | CPU per object (µs) | worst loop stall (ms) | peak RSS (MB) |\n|"
        + "---|"
        * 9
    )
    rows = [
        f"| {s['shard']} | {s['targets']:,} | {s['api_calls']:,} ({s['floor_calls']:,}) "
        f"| {s['first_snapshot_s']:.2f} | {s['cycle_s']:.2f} | {s['ideal_cycle_s']:.2f} "
        f"| {s['cpu_us_per_object']:.1f} | {s['worst_loop_stall_ms']:.1f} "
        f"| {s['peak_rss_mb']:.0f} |"
        for s in r["shards"]
    ]
    summary = (
        f"{r['objects']:,} objects, {r['api_calls']:,} API calls a warm cycle in all (floor "
        f"{r['floor_calls']:,}). The busiest shard holds {r['objects_max_over_mean']}x the "
        f"mean share of objects and makes {r['calls_max_over_mean']}x the mean share of "
        f"calls; CPU per object is at most {r['cpu_us_per_object_max']} µs and peak RSS at "
        f"most {r['peak_rss_mb_max']:.0f} MB in any shard."
    )
    return "\n".join([head, *rows, "", summary])


def statuspage_section(r: dict[str, Any]) -> str:
    goal = "met" if r["p99_ratio"] <= 2 else "MISSED"
    return (
        f"{r['objects']:,} objects; `/metrics` idle p50 / p99 {r['idle']['p50_ms']} / "
        f"{r['idle']['p99_ms']} ms; with {r['crowd']} clients loading `/` back to back "
        f"({r['page_loads']:,} page loads meanwhile) {r['with_crowd']['p50_ms']} / "
        f"{r['with_crowd']['p99_ms']} ms: p99 {r['p99_ratio']}x the idle p99 "
        f"(goal ≤ 2x): {goal}."
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table(results: list[dict[str, Any]]) -> str:
    head = (
        "| targets | cycle (s) | N·L/C (s) | cycle / N·L/C | CPU per request (µs) "
        "| scrape p50 / p99 (ms) | floor p50 / p99 (ms) | p50 / p99 vs floor "
        "| scrape p50 / p99 during cycles (ms) "
        "| worst loop stall (ms) | peak RSS (MB) |\n|" + "---|" * 11
    )
    rows = [
        f"| {r['targets']:,} | {r['cycle_s']:.2f} | {r['ideal_cycle_s']:.2f} "
        f"| {r['cycle_ratio']:.3f} "
        f"| {r['cpu_us_per_request']:.0f} | {ms(r['scrape']['p50'])} / {ms(r['scrape']['p99'])} "
        f"| {ms(r['floor']['p50'])} / {ms(r['floor']['p99'])} "
        f"| {r['p50_ratio']:.2f} / {r['p99_ratio']:.2f} "
        f"| {ms(r['scrape_during_cycles']['p50'])} / {ms(r['scrape_during_cycles']['p99'])} "
        f"| {r['worst_loop_stall_ms']:.1f} | {r['peak_rss_mb']:.0f} |"
        for r in results
    ]
    return "\n".join([head, *rows])


def discovery_table(results: list[dict[str, Any]]) -> str:
    head = (
        "| projects | found by | objects | API calls (floor) | first snapshot (s) "
        "| cycle (s) | calls·L/C (s) | goal (s) "
        "| CPU per object (µs) | scrape p99 / floor p99 (ms) | p99 vs floor "
        "| worst loop stall (ms) | peak RSS (MB) |\n|" + "---|" * 13
    )
    rows = [
        f"| {r['projects']} | {'account' if r['account'] else 'configuration'} "
        f"| {r['targets']:,} | {r['api_calls']:,} ({r['floor_calls']:,}) "
        f"| {r['first_snapshot_s']:.2f} | {r['cycle_s']:.2f} | {r['ideal_cycle_s']:.2f} "
        f"| {cycle_goal(r):.2f} "
        f"| {r['cpu_us_per_object']:.0f} | {ms(r['scrape']['p99'])} / {ms(r['floor']['p99'])} "
        f"| {r['p99_ratio']:.2f} | {r['worst_loop_stall_ms']:.1f} | {r['peak_rss_mb']:.0f} |"
        for r in results
    ]
    return "\n".join([head, *rows])


def usage_section(runs: list[dict[str, Any]]) -> str:
    """The dev-server sweep's cost: calls against the floor, and the difference in CPU."""
    head = (
        "| dev servers | dev-server list calls (floor) | servers per call | warm cycle (s) "
        "| CPU per cycle (ms) | worst loop stall (ms) | peak RSS (MB) |\n|" + "---|" * 7
    )
    rows = []
    for r in runs:
        floor = r["projects"] * calls_needed(r["devservers"] // r["projects"])
        per_call = r["devservers"] / r["devserver_calls"] if r["devserver_calls"] else 0
        rows.append(
            f"| {r['devservers']:,} | {r['devserver_calls']} ({floor}) | {per_call:,.0f} "
            f"| {r['cycle_s']:.2f} | {r['cpu_ms_per_cycle']:.0f} "
            f"| {r['worst_loop_stall_ms']:.1f} | {r['peak_rss_mb']:.0f} |"
        )
    base, loaded = runs
    extra = (loaded["cpu_ms_per_cycle"] - base["cpu_ms_per_cycle"]) * 1000 / loaded["devservers"]
    return "\n".join([head, *rows]) + (
        f"\n\nCPU per dev server listed, a warm cycle: {extra:.2f} µs (the difference of the "
        "two runs' CPU per cycle, over the dev servers)."
    )


def cycle_goal(r: dict[str, Any]) -> float:
    """A warm discovery cycle's goal: calls.L/C + 2 s."""
    return float(r["ideal_cycle_s"] + 2.0)


def discovery_verdicts(largest: dict[str, Any]) -> str:
    goal = cycle_goal(largest)
    lines = [
        f"- `api_calls` = {largest['api_calls']} (goal = the floor, {largest['floor_calls']}): "
        f"{'met' if largest['api_calls'] <= largest['floor_calls'] else 'MISSED'}",
        f"- `cycle_s` = {largest['cycle_s']} (goal ≤ {goal:.2f}): "
        f"{'met' if largest['cycle_s'] <= goal else 'MISSED'}",
    ]
    figures = {
        **largest,
        "healthy_max_ms": round(largest["healthy_during_cycles"]["max"] * 1000, 1),
    }
    for key, limit in DISCOVERY_GOALS.items():
        got = figures[key]
        lines.append(f"- `{key}` = {got} (goal ≤ {limit}): {'met' if got <= limit else 'MISSED'}")
    return "\n".join(lines)


def verdicts(largest: dict[str, Any]) -> str:
    lines = []
    for key, goal in GOALS.items():
        got = largest[key]
        lines.append(f"- `{key}` = {got} (goal ≤ {goal}): {'met' if got <= goal else 'MISSED'}")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["targets"] for r in results]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(ns, [r["cycle_s"] for r in results], "o-", label="poll cycle")
    a.plot(ns, [r["ideal_cycle_s"] for r in results], "k--", label="N·L/C")
    a.set(xscale="log", yscale="log", xlabel="targets", ylabel="seconds", title="Poll cycle")
    a.legend()
    for key, label in (("scrape", "exporter"), ("floor", "static bytes (floor)")):
        b.plot(ns, [r[key]["p50"] * 1000 for r in results], "o-", label=f"{label} p50")
        b.plot(ns, [r[key]["p99"] * 1000 for r in results], "s--", label=f"{label} p99")
    b.set(xscale="log", xlabel="targets", ylabel="ms", title="/metrics latency, 8 scrapers")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--targets", default="100,1000,10000")
    p.add_argument(
        "--discovery",
        default="1x10000+1000,100x900+100,100x900+100@account",
        help="discovery runs as PROJECTSxSERVERS+IMAGES (per project), comma-separated; "
        "@account finds the projects through one account",
    )
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--scrape-seconds", type=float, default=10.0)
    p.add_argument("--output", default="docs/benchmarks.md")
    p.add_argument(
        "--no-shards", dest="shards", action="store_false",
        help="leave out the 1,000,000-object sharded point (about ten minutes)",
    )  # fmt: skip
    args = p.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = [run_node(["--targets", n], args) for n in args.targets.split(",")]
    discovered = []
    for spec in filter(None, args.discovery.split(",")):
        size, _, how = spec.partition("@")
        projects, rest = size.split("x")
        servers, images = rest.split("+")
        flags = ["--projects", projects, "--servers", servers, "--images", images]
        flags += ["--account"] if how == "account" else []
        discovered.append(run_node(flags, args))
    # The dev-server sweep: the same fleet without dev servers and with 10,000 a project.
    fleet = ["--projects", "10", "--servers", "100", "--images", "100"]
    usage = [run_node([*fleet, "--devservers", n], args) for n in ("0", "10000")]
    page = run_module("bench.statuspage")
    startup = run_module("bench.startup")
    shards = run_module("bench.shards") if args.shards else None
    goals = run_module("bench.goals")
    memory = run_module("bench.memory")
    out = ROOT / args.output
    plot(results, out.with_suffix(".png"))
    command = "python -m bench " + " ".join(sys.argv[1:])
    out.write_text(TEMPLATE.format(
        started=started, machine=machine(), command=command.strip(), latency=args.latency * 1000,
        concurrency=args.concurrency, table=table(results), verdicts=verdicts(results[-1]),
        largest=f"{results[-1]['targets']:,}", usage=usage_section(usage),
        raw=json.dumps(results + discovered + usage, indent=1),
        discovery=discovery_table(discovered) if discovered else "(not run)",
        discovery_verdicts=discovery_verdicts(discovered[-1]) if discovered else "",
        discovery_largest=f"{discovered[-1]['targets']:,}" if discovered else "",
        png=out.with_suffix(".png").name, statuspage=statuspage_section(page),
        startup=startup_section(startup),
        shards=shards_section(shards) if shards else "(not run: --no-shards)",
        goals=bench.goals.markdown(goals["points"], goals["floor"]),
        memory=bench.memory.markdown(memory),
    ))  # fmt: skip
    print(f"wrote {out}")


TEMPLATE = """# Benchmarks

Measured {started} on {machine}.

Command: `.venv/bin/pip install -e '.[bench]' && .venv/bin/{command}` (about twenty
minutes; each point runs in a fresh process). L = {latency:.0f} ms simulated API latency,
C = {concurrency} requests in flight, 8 concurrent scrapers with Prometheus' own `Accept`
and `Accept-Encoding: gzip` headers.

How each figure is taken (all in the same run):
- **cycle**: wall time of one poll cycle after a warm-up cycle, from the first request to
  the new snapshot being rendered and served, against the ideal N·L/C.
- **CPU per request**: the exporter process's CPU time during that cycle (all threads,
  rendering included) divided by N. The simulated cloud runs in its own process (on uvloop,
  so that it is not what limits the cycle); the exporter runs on the standard asyncio loop.
- **scrape**: `/metrics` latency between cycles, 8 scrapers back to back, against the
  **floor**: a bare aiohttp server in its own process serving the very same bytes from memory.
- **during cycles**: the same scrapers (each 2 per second) while cycles run back to back;
  **worst loop stall** is the longest an asyncio sleep of 5 ms overslept in that phase.
- **peak RSS**: the exporter process's maximum resident set size.

{table}

![cycle time and scrape latency against N]({png})

Goals at {largest} targets:
{verdicts}

## Discovery

The same measurements with objects found by list sweeps instead of listed by ID: each
project has its image servers listed up to 100 a call, consecutive pages overlapping by one
(so 1 + ⌈(servers - 100) / 99⌉ calls), and its dev-server images in one call; that, plus
the project's build-job calls, is the floor of API calls per cycle. The cycle
measured is a warm one (the second, nothing changed), against calls·L/C; CPU is per object.
**first snapshot** is the first cycle from start (with an account, it lists the projects
first); the account is read again every `poll.projects_refresh_interval`, not every cycle.

{discovery}

Goals at {discovery_largest} objects:
{discovery_verdicts}

## Dev servers per image

In the same run, one fleet of 10 projects (100 image servers and 100 dev-server images
each, configured sweeps) measured twice as above: without dev servers, and with 10,000 dev
servers a project running its images. Each project's dev servers are listed 1,024 a page,
pages overlapping by one (1 + ⌈(servers - 1,024) / 1,023⌉ calls); the difference between
the two runs is what counting 100,000 dev servers costs a warm cycle.

{usage}

## Start-up with a large state file

`python -m bench.startup` (in the same run): the exporter started from the command line
with a state file, probed from another process every 10 ms from the moment it is spawned.
The server listens first, then reads the file a slice at a time in a thread.

{startup}

## 1,000,000 objects over 10 shards

`python -m bench.shards` (in the same run): one simulated cloud of 1,000 projects × 1,000
objects found through one account, and ten exporter processes (`--shard N --total-shards
10`), run one after another so that each has the machine to itself, each measured as above
(warm cycle, CPU per object, stall, peak RSS).

{shards}

## The status page under a crowd

`python -m bench.statuspage` (in the same run): the exporter's app serving a fixed snapshot,
`/metrics` scraped from another process while idle and while 20 clients load `/` over and
over. The page is rendered once per snapshot, in slices, and shared by every request.

{statuspage}

## 100,000 objects: the goals, before and after

`python -m bench.goals` (in the same run): 100 projects found through one account, each
with 990 image servers and 10 dev-server images (99% image servers), 2 scrapers asking for
gzip; `bench.node` on the code before this work (9efb180, driven by the same harness), on
this code, and on this code with `--metric-denylist='.*_timestamp_seconds'`, each in a
process of its own. "First snapshot after its answers" is the time from the first cycle's
last answer to its snapshot being served (the code before has no such mark: its whole
first cycle stands in).

{goals}

## Where the memory goes

`python -m bench.memory` (in the same run): the same fleet after two cycles and a gzip
scrape, each long-lived structure's objects walked and counted once, for the first
structure that reaches them (the snapshot holds the objects and their strings; the
rendering, the body's deflated pieces; the blocks, what the next rendering reuses; the page
memos, what each list page gave and its digest).

{memory}

<details><summary>Raw results</summary>

```json
{raw}
```
</details>
"""


if __name__ == "__main__":
    main()
