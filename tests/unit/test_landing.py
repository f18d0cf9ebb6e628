"""The landing page as a fleet status page: counts, colours, ages, last jobs, escaping."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.domain.health import Health
from exporter.domain.jobs import Job, JobsState, SubJob
from exporter.domain.state import DevServerImage, ImageServer, Snapshot, TargetState
from exporter.domain.targets import Resource, TargetKey
from exporter.domain.usage import ImageUse, UsageState
from exporter.web.landing import age, render_landing

NOW = 1_800_000_000.0
P = "p1"


def server(sid: str, status: str, name: str | None = None, **state: object) -> TargetState:
    obj = ImageServer(
        sid if name is None else name, "", "", "", "", "", "", "", status, None, None, ()
    )
    health: dict[str, object] = {"up": True, "last_success": NOW - 30}
    fields: dict[str, object] = {"exists": True, "obj": obj, "status_since": NOW - 720}
    for field, value in state.items():  # the Health's fields, or the state's
        (health if field in Health.__slots__ else fields)[field] = value
    key = TargetKey(Resource.IMAGE_SERVER, P, sid)
    return TargetState(key, Health(**health), **fields)  # type: ignore[arg-type]


def image(iid: str, status: str) -> TargetState:
    obj = DevServerImage(iid, "ARM", "BMS", status)
    return TargetState(
        TargetKey(Resource.DEVSERVER_IMAGE, P, iid), Health(True, NOW), True, obj, NOW
    )


def failed_build(sid: str, message: str) -> SubJob:
    return SubJob("sj-1", "job-1", "BUILD_IMAGE", sid, sid, "FAILED", "WKS.0500", message,
                  NOW - 400, NOW - 300)  # fmt: skip


class Rows(HTMLParser):
    """The page's elements: every tag with its attributes, and the text of each row."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[tuple[dict[str, str | None], list[str]]] = []
        self._cells: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr" and dict(attrs).get("data-state") is not None:
            self._cells = []
            self.rows.append((dict(attrs), self._cells))
        elif tag == "td" and self._cells is not None:
            self._cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._cells = None

    def handle_data(self, data: str) -> None:
        if self._cells:
            self._cells[-1] += data


def parse(page: str) -> Rows:
    p = Rows()
    p.feed(page)
    return p


def snapshot(
    *targets: TargetState, jobs: tuple[JobsState, ...] = (), usage: tuple[UsageState, ...] = ()
) -> Snapshot:
    return Snapshot(targets, {}, 60.0, jobs=jobs, usage=usage)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.9, "59 s"), (60, "1 min"), (720, "12 min"), (3600, "1 h"),
     (3600 + 300, "1 h 5 min"), (86400, "1 d"), (2 * 86400 + 4 * 3600 + 59, "2 d 4 h"),
     (-5, "0 s")],
)  # fmt: skip
def test_ages_are_short_and_rounded_down(seconds: float, text: str) -> None:
    assert age(seconds) == text


def test_rows_are_coloured_by_state_and_trouble_comes_first() -> None:
    page = render_landing(
        snapshot(
            server("srv-ok", "ACTIVE"),
            server("srv-build", "BUILDING"),
            server("srv-err", "ERROR"),
            server("srv-gone", "ACTIVE", exists=False, obj=None),
            server("srv-flaky", "ACTIVE", up=False, error="HTTP 503 WKS.0503", error_label="x"),
            image("img-1", "INACTIVE"),
        ),
        NOW,
    )
    rows = parse(page).rows
    by_id = {cells[2]: attrs for attrs, cells in rows}
    assert by_id["srv-err"]["class"] == "s-error"
    assert by_id["srv-build"]["class"] == "s-busy"
    assert by_id["srv-gone"]["class"] == "s-gone"
    assert by_id["srv-flaky"]["class"] == "failing"
    assert by_id["srv-flaky"]["data-state"] == "image_server:ACTIVE failing"
    assert "class" not in by_id["srv-ok"]
    # Failing polls first, then ERROR, then transitional, then the gone, then the rest.
    assert [cells[2] for _, cells in rows][:4] == ["srv-flaky", "srv-err", "srv-build", "srv-gone"]
    flaky = next(cells for _, cells in rows if cells[2] == "srv-flaky")
    assert flaky[9].startswith("poll failing: HTTP 503 WKS.0503")
    assert flaky[5] == "12 min" and flaky[7] == "30 s ago"


def test_counts_by_resource_and_status_filter_the_table() -> None:
    page = render_landing(
        snapshot(server("a", "ACTIVE"), server("b", "ACTIVE"), server("c", "ERROR"),
                 server("d", "MIGRATING"), server("e", "ACTIVE", up=False),
                 image("i", "ACTIVE")),
        NOW,
    )  # fmt: skip
    chips = {a["data-state"]: a for tag, a in parse(page).tags if tag == "button"}
    assert list(chips) == [
        "image_server:ACTIVE", "image_server:ERROR", "image_server:MIGRATING",
        "devserver_image:ACTIVE", "failing",
    ]  # fmt: skip
    assert 'data-state="image_server:ACTIVE" aria-pressed="false">ACTIVE <b>3</b>' in page
    assert 'data-state="failing" aria-pressed="false">poll failing <b>1</b>' in page
    assert chips["image_server:ERROR"]["class"] == "s-error"


def test_an_error_image_server_shows_its_last_jobs_message() -> None:
    message = 'disk full: "/" at 100% <b>'
    jobs = JobsState(P, Health(True, NOW), latest=(failed_build("srv-err", message),))
    page = render_landing(snapshot(server("srv-err", "ERROR"), jobs=(jobs,)), NOW)
    ((_attrs, cells),) = parse(page).rows
    assert cells[9] == f"BUILD_IMAGE FAILED WKS.0500, ended 5 min ago{message}"
    assert '<span class="message">disk full: &quot;/&quot; at 100% &lt;b&gt;</span>' in page
    assert "<h2>Image build jobs (1)</h2>" in page


CLOUD_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=60)


@given(name=CLOUD_TEXT, message=CLOUD_TEXT, error=CLOUD_TEXT)
def test_every_string_from_the_cloud_stays_text(name: str, message: str, error: str) -> None:
    jobs = JobsState(P, Health(True, NOW), latest=(failed_build("srv-x", message),))
    targets = (
        server("srv-x", "ERROR", name=name),
        server("srv-y", "ACTIVE", name=name, up=False, error=error, error_label="e"),
    )
    page = render_landing(snapshot(*targets, jobs=(jobs,)), NOW)
    parsed = parse(page)
    # The page's own elements only: one script, no element or attribute from the cloud.
    assert [t for t, _ in parsed.tags].count("script") == 1
    assert {t for t, _ in parsed.tags} <= {
        "html", "head", "meta", "title", "link", "style", "body", "h1", "h2", "p", "a", "div",
        "strong", "button", "b", "label", "input", "span", "table", "colgroup", "col", "thead",
        "tr", "th", "tbody", "td", "script",
    }  # fmt: skip
    cells = {c[2]: c for _, c in parsed.rows}
    assert cells["srv-x"][3] == name and cells["srv-x"][9].endswith(message)
    assert cells["srv-y"][9].startswith(f"poll failing: {error}")


def test_a_deleted_object_keeps_its_last_name_through_observation() -> None:
    from exporter.domain.state import observe_answer

    key = TargetKey(Resource.IMAGE_SERVER, P, "srv-1")
    obj = server("srv-1", "ACTIVE", name="build box").obj
    seen = observe_answer(None, key, obj, Health(True, NOW))
    gone = observe_answer(seen, key, None, Health(True, NOW + 60))
    still_gone = observe_answer(gone, key, None, Health(True, NOW + 120))
    assert (gone.obj, gone.last_name, still_gone.last_name) == (None, "build box", "build box")
    [(attrs, cells)] = parse(render_landing(snapshot(still_gone), NOW + 120)).rows
    assert cells[3] == "build box" and cells[4] == "(deleted)" and attrs["class"] == "s-gone"


def test_project_names_are_shown_where_known_and_ids_are_whole_in_the_title() -> None:
    from exporter.domain.accounts import Project

    snap = Snapshot(
        (server("srv-1", "ACTIVE"),), {}, 60.0, projects=(Project(P, "cn-north-4_team", "prod"),)
    )
    page = parse(render_landing(snap, NOW))
    [(_, cells)] = page.rows
    assert cells[1] == "cn-north-4_team (p1)" and cells[2] == "srv-1"
    tds = [attrs for tag, attrs in page.tags if tag == "td" and attrs.get("data-label")]
    project, ident = tds[1], tds[2]
    assert project["title"] == "cn-north-4_team (p1)"
    assert (ident["title"], ident["data-label"]) == ("srv-1", "ID")
    assert [a["data-label"] for a in tds] == [
        "Resource", "Project", "ID", "Name", "Status", "Since", "Poll", "Last success",
        "Origin", "Job / error",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "begin", "end", "text"),
    [("WAITING", NOW - 600, None, "BUILD_IMAGE WAITING"),
     ("RUNNING", NOW - 7200, None, "BUILD_IMAGE RUNNING for 2 h"),
     ("RUNNING", None, None, "BUILD_IMAGE RUNNING"),
     ("SUCCESS", NOW - 900, NOW - 300, "BUILD_IMAGE SUCCESS, ended 5 min ago"),
     ("FAILED", NOW - 900, NOW - 60, "BUILD_IMAGE FAILED WKS.0500, ended 1 min agodisk full")],  # a block below
)  # fmt: skip
def test_job_wording_never_contradicts_itself(
    status: str, begin: float | None, end: float | None, text: str
) -> None:
    sub = SubJob("sj", "job", "BUILD_IMAGE", "srv-1", "a", status,
                 "WKS.0500" if status == "FAILED" else "", "disk full", begin, end)  # fmt: skip
    jobs = (JobsState(P, Health(True, NOW), latest=(sub,)),)
    [(_, cells)] = parse(render_landing(snapshot(server("srv-1", "ACTIVE"), jobs=jobs), NOW)).rows
    assert cells[9] == text


def test_a_target_never_answered_shows_no_job_of_its_own() -> None:
    sub = failed_build("srv-1", "an old failure")
    jobs = (JobsState(P, Health(True, NOW), latest=(sub,)),)
    never = server("srv-1", "ACTIVE", up=False, exists=None, obj=None, error="HTTP 401")
    [(_, cells)] = parse(render_landing(snapshot(never, jobs=jobs), NOW)).rows
    assert cells[9] == "poll failing: HTTP 401"


async def test_the_page_is_rendered_once_per_snapshot_however_many_ask() -> None:
    import asyncio

    from exporter.web.pagecache import PageCache

    renders: list[Snapshot] = []
    clock = [0.0]

    async def render(snap: Snapshot) -> str:
        renders.append(snap)
        await asyncio.sleep(0.01)
        return "page"

    cache = PageCache(render, clock=lambda: clock[0])
    first = snapshot(server("srv-1", "ACTIVE"))
    pages = await asyncio.gather(*(cache.page(first) for _ in range(20)))
    assert pages == [b"page"] * 20 and renders == [first]
    second = snapshot(server("srv-1", "ERROR"))
    await cache.page(second)
    await cache.page(second)
    assert renders == [first, second]
    clock[0] += 61  # older than the interval (60 s): rendered again, ages move on
    await cache.page(second)
    assert renders == [first, second, second]


def test_long_values_are_cut_and_right_to_left_text_is_isolated() -> None:
    rtl = "\u202edesrever"  # an override that would turn the rest of the row around
    huge = server("srv-1", "B" * 1024, name=rtl, up=False, error="E" * 10_000)
    page = render_landing(snapshot(huge), NOW)
    [(_, cells)] = parse(page).rows
    assert cells[4] == "B" * 299 + "…" and len(cells[9]) < 400
    assert cells[3] == rtl
    assert "unicode-bidi:isolate" in page
    assert len(page) < 20_000


def test_a_kind_of_warning_is_written_once_per_period_with_the_number_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from exporter.support.ratelog import RateLimitedLog

    clock = [0.0]
    limited = RateLimitedLog(logging.getLogger("test.ratelog"), every=300, clock=lambda: clock[0])
    caplog.set_level(logging.WARNING, logger="test.ratelog")
    written = [limited.emit("bad", "item %d is bad", n) for n in range(20_000)]
    clock[0] += 301
    limited.emit("bad", "item %d is bad", 20_000)
    limited.emit("other", "something else")
    assert sum(written) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "item 0 is bad",
        "item 20000 is bad (and 19999 more like it in the last 300s)",
        "something else",
    ]


def test_running_builds_longest_first_and_how_long_ended_ones_took() -> None:
    started = (Job("job-new", "CREATE_SERVER", "WAITING", NOW - 90),
               Job("job-<old>", "BUILD_IMAGE", "RUNNING", NOW - 7 * 3600),
               Job("job-untimed", "other", "RUNNING", None))  # fmt: skip
    # Three ended BUILD_IMAGE sub-jobs: 2 min, 4 min and 50 min; the median is in the 5 min
    # bucket. The latest sub-job of srv-1 failed after 100 s.
    per_bucket = (0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0)
    jobs = JobsState(P, Health(True, NOW), latest=(failed_build("srv-1", "x"),),
                     started=started,
                     durations=((("BUILD_IMAGE", "FAILED"), ((0, 0, 0, 1, *(0,) * 10), 100.0)),
                                (("BUILD_IMAGE", "SUCCESS"), (per_bucket, 3360.0))))  # fmt: skip
    page = render_landing(snapshot(server("srv-1", "ERROR"), jobs=(jobs,)), NOW)
    assert "<h2>Running builds (3)</h2>" in page
    running = re.findall(r"<td>(job-[^<]*)</td><td>[^<]*</td><td>[^<]*</td><td>([^<]*)</td>", page)
    assert running == [("job-&lt;old&gt;", "7 h"), ("job-new", "1 min"), ("job-untimed", "")]
    assert '<tr class="down"><td>p1</td><td>job-&lt;old&gt;</td>' in page  # past 6 h: shaded
    assert '<tr class="up"><td>p1</td><td>job-new</td>' in page
    assert "<h2>Build durations (2)</h2>" in page
    assert (
        '<tr class="down"><td>p1</td><td>BUILD_IMAGE</td>'
        "<td>FAILED</td><td>1</td><td>≤ 2 min</td><td>1 min</td><td>1 min</td></tr>"
    ) in page
    assert (
        '<tr class="up"><td>p1</td><td>BUILD_IMAGE</td>'
        "<td>SUCCESS</td><td>3</td><td>≤ 5 min</td><td>18 min</td><td></td></tr>"
    ) in page


def test_each_images_servers_inactive_images_in_use_first_and_cloud_text_escaped() -> None:
    retired, used, idle, stranger = "img-retired", "img-used", "img-<idle>", 'img-"x"&'
    usage = UsageState(P, Health(True, NOW), objects=7, pages=1, complete=True, in_use=(
        ImageUse(used, (("RUNNING", 3), ("STOPPED", 1)), True),
        ImageUse(retired, (("DELETED", 1), ("RUNNING", 1)), True),
        ImageUse(stranger, (("other", 1),), False),
    ), idle=(idle,))  # fmt: skip
    snap = replace(
        snapshot(image(retired, "INACTIVE"), image(used, "ACTIVE"), image(idle, "ACTIVE")),
        usage=(usage,),
    )
    page = render_landing(snap, NOW)
    assert "<h2>Dev servers per image (4)</h2>" in page
    table = page.split("<h2>Dev servers per image (4)</h2>")[1].split("</table>")[0]
    rows = [(css, re.findall(r"<td>([^<]*)</td>", cells))
            for css, cells in re.findall(r'<tr class="(\w+)">(.*?)</tr>', table)]  # fmt: skip
    assert rows == [
        # INACTIVE and still run by one server (the DELETED one does not count): first.
        ("down", [retired, "INACTIVE", "1", "1 DELETED, 1 RUNNING", "yes", retired, P]),
        ("up", [used, "ACTIVE", "4", "3 RUNNING, 1 STOPPED", "yes", used, P]),
        # In use, not watched: no name, no status; the ID escaped.
        ("up", ["img-&quot;x&quot;&amp;", "", "1", "1 other", "no", "img-&quot;x&quot;&amp;", P]),
        ("up", ["img-&lt;idle&gt;", "ACTIVE", "0", "no server", "yes", "img-&lt;idle&gt;", P]),
    ]
    sweeps = page.split("<h2>Sweeps (1)</h2>")[1]
    assert "<td>Dev servers</td><td>p1</td><td>up</td><td>7</td><td>1</td><td>yes</td>" in sweeps


def test_a_project_whose_servers_were_never_listed_shows_no_image_rows() -> None:
    usage = UsageState(P, Health(False, None, "HTTP 403", "http_403"), list_allowed=False)
    page = render_landing(replace(snapshot(image("img-1", "ACTIVE")), usage=(usage,)), NOW)
    assert "Dev servers per image" not in page
    assert "<td>Dev servers</td><td>p1</td><td>down</td>" in page


def test_what_needs_attention_is_said_first_and_counted() -> None:
    from exporter.web.attention import needs_attention

    jobs = JobsState(P, Health(True, NOW), started=(
        Job("long", "BUILD_IMAGE", "RUNNING", NOW - 7 * 3600),
        Job("short", "BUILD_IMAGE", "RUNNING", NOW - 60),
    ))  # fmt: skip
    usage = UsageState(P, Health(True, NOW), in_use=(ImageUse("img-i", (("RUNNING", 2),), True),))
    snap = snapshot(
        server("srv-1", "ERROR"), server("srv-2", "ERROR"), server("srv-3", "ACTIVE", up=False),
        image("img-i", "INACTIVE"), jobs=(jobs,), usage=(usage,),
    )  # fmt: skip
    assert needs_attention(snap, NOW) == [
        "2 image servers in ERROR", "1 build running over 6 h", "1 INACTIVE image still in use",
        "1 poll failing",
    ]  # fmt: skip
    page = render_landing(snap, NOW)
    assert page.index('class="attention"') < page.index("<h2>Targets")
    assert 'id="refresh"\ndata-seconds="60" checked' in page
    calm = render_landing(snapshot(server("srv-1", "ACTIVE")), NOW)
    assert '<p class="calm" role="status">Nothing needs attention.</p>' in calm
