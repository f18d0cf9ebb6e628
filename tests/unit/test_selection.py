"""Series selection (--metric-allowlist / --metric-denylist): what is dropped is never
written, what is kept is byte for byte what prometheus_client writes of the kept families,
and the shipped alerts and panels that need a dropped family are named."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter import cli
from exporter.domain.state import Snapshot
from exporter.exposition.collector import SnapshotCollector
from exporter.exposition.live import live_registry
from exporter.exposition.render import render, render_async
from exporter.exposition.selection import ALL, Selected, Selection, family_of
from exporter.exposition.store import Exposition
from exporter.exposition.textformat import Format, encode
from exporter.needs import DASHBOARD_PANELS, selection_report, unmet, users
from exporter.runtime import served_families
from tests.unit.test_exposition import snapshots

ROOT = Path(__file__).resolve().parents[2]
KNOWN = served_families()
NAMES = sorted(KNOWN)


@pytest.mark.parametrize(
    ("text", "allow", "message"),
    [
        ("", False, "--metric-denylist: no expression given; write e.g. "
                    "--metric-denylist='.*_info'"),
        (" , ", True, "--metric-allowlist: no expression given; write e.g. "
                      "--metric-allowlist='.*_info'"),
        ("a,,b", False, "--metric-denylist: an empty expression in 'a,,b'; remove the extra comma"),
        ("ok,x(", True, "--metric-allowlist: 'x(' is not a regular expression (missing ), "
                        "unterminated subpattern at position 1); escape special characters "
                        "with a backslash"),
    ],
)  # fmt: skip
def test_a_bad_list_is_refused_naming_the_flag_and_the_fix(
    text: str, allow: bool, message: str
) -> None:
    with pytest.raises(ValueError, match=r"^--metric-") as caught:
        Selection.parse(text, allow=allow)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("flag", "name", "kind", "kept"),
    [
        ("deny=.*_timestamp_seconds", "huaweicloud_image_exporter_status_last_change_timestamp_seconds", "gauge", False),
        ("deny=.*_timestamp_seconds", "huaweicloud_image_exporter_target_up", "gauge", True),
        ("deny=timestamp", "x_timestamp_seconds", "gauge", True),  # whole names only
        ("deny=x_total", "x", "counter", False),  # a counter is matched as its TYPE line names it
        ("deny=x", "x", "counter", False),
        ("deny=x_total", "x", "gauge", True),
        ("deny=x_info", "x", "info", False),
        ("allow=x_info", "x", "info", True),
        ("allow=a, b.*", "bz", "gauge", True),  # spaces around an expression are not part of it
        ("allow=a,b.*", "c", "gauge", False),
    ],
)  # fmt: skip
def test_which_families_a_list_keeps(flag: str, name: str, kind: str, kept: bool) -> None:
    which, _, text = flag.partition("=")
    assert Selection.parse(text, allow=which == "allow").keeps(name, kind) is kept
    assert ALL.keeps(name, kind)


_selections = st.builds(
    lambda names, allow: Selection.parse(",".join(re.escape(n) for n in names), allow=allow),
    st.lists(st.sampled_from(NAMES), min_size=1, max_size=6), st.booleans(),
)  # fmt: skip


@given(first=snapshots(), second=snapshots(), select=_selections)
def test_a_selection_renders_exactly_the_kept_families(
    first: Snapshot, second: Snapshot, select: Selection
) -> None:
    """From scratch, and from the previous rendering's lines, in both formats."""
    for fmt in Format:
        expected = encode(Selected(SnapshotCollector(first), select), fmt)
        assert b"".join(render(first, select).chunks(fmt)) == expected
    _, kept = asyncio.run(render_async(first, select=select))
    again, _ = asyncio.run(render_async(second, kept, select))
    assert b"".join(again.chunks(Format.TEXT)) == encode(
        Selected(SnapshotCollector(second), select), Format.TEXT
    )


def test_the_live_part_is_selected_too() -> None:
    select = Selection.parse("process_.*,python_.*", allow=False)
    body = Exposition(live_registry(), Snapshot((), {}, 60.0), select=select).body(
        Format.TEXT, gzip=False
    )
    text = b"".join(body).decode()
    assert "huaweicloud_image_exporter_build_info" in text
    assert "# TYPE huaweicloud_image_exporter_targets gauge" in text
    assert "process_" not in text and "python_" not in text


def test_the_dashboard_map_is_the_shipped_dashboard() -> None:
    """DASHBOARD_PANELS lists what each panel of the shipped dashboard queries."""
    board = json.loads((ROOT / "deploy/grafana/huaweicloud-image-exporter.json").read_text())
    series = re.compile(r"\bhuaweicloud_[a-z0-9_]+")

    def panels(items: list[dict[str, object]]) -> dict[str, tuple[str, ...]]:
        found: dict[str, tuple[str, ...]] = {}
        for p in items:
            exprs = " ".join(str(t.get("expr", "")) for t in p.get("targets", []))  # type: ignore[attr-defined]
            if exprs.strip():
                found[str(p["title"])] = tuple(sorted(set(series.findall(exprs))))
            found |= panels(p.get("panels", []))  # type: ignore[arg-type]
        return found

    variables = " ".join(str(v.get("query", "")) for v in board["templating"]["list"])
    expected = {"variables job and project": tuple(sorted(set(series.findall(variables))))}
    expected |= panels(board["panels"])
    assert {k: tuple(sorted(v)) for k, v in DASHBOARD_PANELS.items()} == expected


def test_every_series_the_alerts_and_dashboard_read_is_served() -> None:
    for who, series in users():
        for name in series:
            assert family_of(name, KNOWN) is not None, (who, name)


def test_dropping_the_timestamp_families_names_what_it_breaks() -> None:
    select = Selection.parse(".*_timestamp_seconds", allow=False)
    needs = unmet(select, KNOWN)
    assert "alert HuaweiCloudImageServerStuck needs " \
        "huaweicloud_image_exporter_status_last_change_timestamp_seconds" in needs  # fmt: skip
    assert "dashboard panel 'Time since last successful poll' needs " \
        "huaweicloud_image_exporter_target_last_success_timestamp_seconds" in needs  # fmt: skip
    assert not any("HuaweiCloudImageServerError " in n for n in needs)
    assert unmet(ALL, KNOWN) == []
    # A counter dropped by its base name is one the alerts read as ..._total.
    counters = Selection.parse("huaweicloud_image_exporter_api_requests", allow=False)
    assert any(
        n.startswith("alert HuaweiCloudApiAuthFailing needs") for n in unmet(counters, KNOWN)
    )


def test_check_config_reports_the_selection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from tests.integration.test_config import good

    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(good()))
    allow = "huaweicloud_image_exporter_target_up"
    code = cli.main(["--check-config", "--config.file", str(path), f"--metric-allowlist={allow}"])
    out = capsys.readouterr().out
    assert code == 0
    report = selection_report(Selection.parse(allow, allow=True), KNOWN)
    assert report in out
    assert f"--metric-allowlist={allow}: {len(KNOWN) - 1} of {len(KNOWN)} metric families " \
        "not served: " in out  # fmt: skip
    assert "warning: the shipped alert HuaweiCloudImageServerError needs " in out


def test_allowlist_and_denylist_are_one_or_the_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--demo", "--metric-allowlist=a", "--metric-denylist=b"])
    assert caught.value.code == 2
    assert "argument --metric-denylist: not allowed with argument --metric-allowlist" in (
        capsys.readouterr().err
    )


def test_a_dropped_per_target_family_is_not_written_or_kept() -> None:
    """Its lines cost neither the time to write them nor memory between renderings."""
    from exporter.domain.health import Health
    from exporter.domain.state import DevServerImage, TargetState
    from exporter.domain.targets import Resource, TargetKey

    key = TargetKey(Resource.DEVSERVER_IMAGE, "p", "i")
    state = TargetState(key, Health(True, 5.0), True, DevServerImage("n", "A", "B", "ACTIVE"), 2.0)
    snap = Snapshot((state,), {}, 60.0)
    select = Selection.parse(
        ".*_timestamp_seconds,.*_target_exists,huaweicloud_modelarts_devserver_image_status",
        allow=False,
    )
    _, kept = asyncio.run(render_async(snap, select=select))
    # A block's pieces: the seven cloud families', then up, exists and since.
    pieces = [p.text() if p else None for p in kept.blocks[key].pieces]
    assert (pieces[0] or b"").startswith(b"huaweicloud_modelarts_devserver_image_info")
    assert (pieces[1], pieces[-2], pieces[-1]) == (None, None, None)
    _, everything = asyncio.run(render_async(snap))
    pieces = [p.text() if p else None for p in everything.blocks[key].pieces]
    assert (pieces[1] or b"").startswith(b"huaweicloud_modelarts_devserver_image_status")
    assert (pieces[-1] or b"").startswith(b"huaweicloud_image_exporter_status_")


def needed_by_table() -> str:
    """docs/metrics.md's table of which shipped alert or panel reads each family."""
    readers: dict[str, list[str]] = {}
    for who, series in users():
        for name in series:
            readers.setdefault(str(family_of(name, KNOWN)), []).append(who)
    suffix = {"counter": "_total", "info": "_info"}
    rows = ["| family | read by |", "|---|---|"]
    for name, kind in sorted(KNOWN.items()):
        who = "; ".join(sorted(readers.get(name, []))) or "no shipped alert or panel"
        rows.append(f"| `{name}{suffix.get(kind, '')}` | {who} |")
    return "\n".join(rows)


def test_the_metrics_doc_says_which_families_the_alerts_and_dashboard_read() -> None:
    doc = (ROOT / "docs/metrics.md").read_text()
    start, end = "<!-- needed-by -->\n", "\n<!-- /needed-by -->"
    assert start in doc and end in doc, "docs/metrics.md lacks the needed-by markers"
    section = doc[doc.index(start) + len(start) : doc.index(end)]
    assert section == needed_by_table(), "regenerate with: python -c 'from " \
        "tests.unit.test_selection import needed_by_table; print(needed_by_table())'"  # fmt: skip
