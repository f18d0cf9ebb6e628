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

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"cycle_ratio": 1.15, "p99_ratio": 2.0, "worst_loop_stall_ms": 50.0, "peak_rss_mb": 200.0}


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


def run_node(n: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "bench.node", "--targets", str(n), "--latency", str(args.latency),
        "--concurrency", str(args.concurrency), "--scrape-seconds", str(args.scrape_seconds),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800, cwd=ROOT)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


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
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--scrape-seconds", type=float, default=10.0)
    p.add_argument("--output", default="docs/benchmarks.md")
    args = p.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = [run_node(int(n), args) for n in args.targets.split(",")]
    out = ROOT / args.output
    plot(results, out.with_suffix(".png"))
    command = "python -m bench " + " ".join(sys.argv[1:])
    out.write_text(TEMPLATE.format(
        started=started, machine=machine(), command=command.strip(), latency=args.latency * 1000,
        concurrency=args.concurrency, table=table(results), verdicts=verdicts(results[-1]),
        largest=f"{results[-1]['targets']:,}", raw=json.dumps(results, indent=1),
        png=out.with_suffix(".png").name,
    ))  # fmt: skip
    print(f"wrote {out}")


TEMPLATE = """# Benchmarks

Measured {started} on {machine}.

Command: `pip install -e '.[bench]' && {command}` (about a minute; each size runs in a fresh
process). L = {latency:.0f} ms simulated API latency, C = {concurrency} requests in flight,
8 concurrent scrapers with Prometheus' own `Accept` and `Accept-Encoding: gzip` headers.

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

<details><summary>Raw results</summary>

```json
{raw}
```
</details>
"""


if __name__ == "__main__":
    main()
