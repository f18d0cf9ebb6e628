"""The benchmark and soak commands still run and report what they promise.

These are smoke tests at tiny sizes: they check structure, never timings (performance is
measured by ``python -m bench``, not by the test suite).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.polling.jobs import JOB_CALLS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_bench_node_reports_every_figure() -> None:
    result = run("bench.node", "--targets", "20", "--scrape-seconds", "0.5", "--latency", "0.01")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    for key in ("cycle_s", "ideal_cycle_s", "cycle_ratio", "cpu_us_per_request", "p50_ratio",
                "p99_ratio", "worst_loop_stall_ms", "peak_rss_mb"):  # fmt: skip
        assert isinstance(report[key], int | float) and report[key] > 0, key
    assert report["targets_down"] == 0
    assert report["scrape"]["failures"] == 0 and report["scrape"]["count"] > 0
    # The floor serves the bytes of one scrape; others differ only in the small live part.
    assert (
        abs(report["floor"]["bytes"] - report["scrape"]["bytes"]) < 0.05 * report["scrape"]["bytes"]
    )


@pytest.mark.parametrize("how", [[], ["--account"]], ids=["configured", "through an account"])
def test_bench_node_discovery_makes_the_floor_of_calls(how: list[str]) -> None:
    result = run(
        "bench.node", "--projects", "3", "--servers", "150", "--images", "5",
        "--scrape-seconds", "0.5", "--latency", "0.01", *how,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["targets"] == 3 * 155 and report["targets_down"] == 0
    assert report["account"] is bool(how) and report["first_snapshot_s"] > 0
    # Per project: two image-server pages, the image list, the jobs, the dev-server list.
    assert report["api_calls"] == report["floor_calls"] == 3 * (2 + 1 + JOB_CALLS + 1)
    assert report["cpu_us_per_object"] > 0 and report["scrape"]["failures"] == 0


def test_bench_node_lists_every_users_dev_servers_in_one_call() -> None:
    result = run(
        "bench.node", "--projects", "3", "--servers", "5", "--images", "5", "--devservers",
        "2100", "--scrape-seconds", "0.5", "--latency", "0.01",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    # 2,100 servers a project: every user's, in one answer.
    assert (report["devservers"], report["devserver_calls"]) == (6300, 3)
    assert report["api_calls"] == report["floor_calls"] == 3 * (1 + 1 + JOB_CALLS + 1)


def test_soak_reports_start_end_and_failed_scrapes() -> None:
    result = run("bench.soak", "--targets", "20", "--minutes", "0.05", "--warmup", "1")
    report = json.loads(result.stdout)
    assert set(report["start"]) == {"rss_mb", "open_fds", "tasks"} == set(report["end"])
    assert report["failed_scrapes"] == 0 and report["scrapes"] > 0
    assert report["api_requests"] > 0
    assert result.returncode == 0, result.stdout


def test_bench_statefile_writes_and_reads_back() -> None:
    result = run("bench.statefile", "--objects", "300")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["objects"] == 300
    assert report["bytes_per_object"] > 100 and report["read_s"] >= 0 and report["write_s"] >= 0
    assert report["worst_loop_stall_ms_during_write"] >= 0


def test_bench_render_reports_first_and_repeat_renderings() -> None:
    result = run("bench.render", "--projects", "3", "--images", "4", "--repeats", "2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert (report["projects"], report["images"], report["series"]) == (3, 4, 24)
    assert report["first_ms"] > 0 and report["again_ms"] > 0


def test_bench_statuspage_reports_both_phases() -> None:
    result = run("bench.statuspage", "--objects", "500", "--scrapes", "20", "--crowd", "3")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["objects"] == 500 and report["page_loads"] > 0
    assert report["idle"]["p99_ms"] > 0 and report["with_crowd"]["p99_ms"] > 0


def test_bench_startup_reports_when_each_thing_was_served() -> None:
    result = run("bench.startup", "--objects", "500")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["objects"] == 500
    assert 0 < report["first_healthy_s"] <= report["restored_s"] <= report["ready_s"]


def test_bench_shards_split_the_fleet_and_report_each_shard() -> None:
    result = run(
        "bench.shards", "--projects", "4", "--servers", "120", "--images", "3",
        "--total-shards", "2", "--scrape-seconds", "0.3", "--latency", "0.01",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert [s["shard"] for s in report["shards"]] == [0, 1]
    assert report["objects"] == 4 * 123  # every object watched by exactly one shard
    assert report["api_calls"] == report["floor_calls"]
    assert report["objects_max_over_mean"] >= 1.0


def test_bench_selection_reports_both_selections_and_their_ratios() -> None:
    result = run("bench.selection", "--objects", "200")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    every, denied = report["all"], report["denied_timestamps"]
    assert denied["series_per_object"] < every["series_per_object"]
    assert denied["body_bytes"] < every["body_bytes"]
    assert report["series_per_object_ratio"] == round(
        denied["series_per_object"] / every["series_per_object"], 2
    )


def test_bench_gzip_compares_both_ways_in_one_run() -> None:
    result = run("bench.gzip", "--objects", "300")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["objects"] == 300
    assert report["compress_whole_us_per_object"] > 0 and report["gzip_mb"] > 0
    assert report["render_and_assemble_us_per_object"] > 0
    assert 0 < report["held_mb"] < report["body_mb"] and 0.5 < report["size_ratio"] < 1.5


def test_bench_requests_times_the_client_alone() -> None:
    result = run("bench.requests", "--requests", "100", "--objects", "1000")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["requests"] == 100 and report["cpu_us_per_request"] > 0
    assert (
        report["cpu_us_per_object"] == round(report["cpu_us_per_request"] * 100 / 1000, 2)
        or abs(report["cpu_us_per_object"] - report["cpu_us_per_request"] / 10) < 0.1
    )


def test_bench_memory_says_where_the_bytes_go() -> None:
    result = run("bench.memory", "--projects", "2", "--servers", "40", "--images", "2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["objects"] == 2 * 42
    per_object = report["bytes_per_object"]
    assert set(per_object) == {"snapshot", "rendering", "blocks", "gzip", "page_memos", "poller"}
    assert per_object["snapshot"] > 0 and per_object["rendering"] > 0
    assert report["rss_mb"] <= report["peak_rss_mb"]


def test_bench_goals_measures_before_and_after_in_one_run() -> None:
    result = run(
        "bench.goals", "--projects", "2", "--servers", "40", "--images", "2",
        "--scrape-seconds", "0.3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    points = [json.loads(line) for line in lines if line.startswith('{"point"')]
    assert [p["point"] for p in points] == [
        "before (9efb180)", "after", "after, timestamps denied",
    ]  # fmt: skip
    assert all(p["targets"] == 2 * 42 for p in points)
    assert points[2]["series_per_object"] < points[1]["series_per_object"]
    assert json.loads(lines[-1])["points"]["after"] == {
        k: v for k, v in points[1].items() if k != "point"
    }
    floor = json.loads(lines[-1])["floor"]
    assert floor["requests"] == points[1]["api_calls"] and floor["cpu_us_per_object"] > 0
    assert lines[-2].startswith("The floor: ")
    table = "\n".join(lines[len(points) : -2])
    for goal in ("CPU per object", "peak RSS", "first snapshot", "worst event loop stall"):
        [row] = [line for line in table.splitlines() if line.startswith(goal)]
        assert row.count("met") == 3, row  # each point says met or NOT met


def test_bench_cold_compares_the_direct_writer_with_prometheus_client() -> None:
    result = run("bench.cold", "--objects", "300")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["objects"] == 300 and report["first_rendering_us_per_object"] > 0
    assert report["object_families_with_prometheus_client_us_per_object"] > 0
