"""The HTTP endpoints: /metrics, /-/healthy, /-/ready, /-/reload and the landing page."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from yarl import URL

from exporter.config.errors import ConfigError
from exporter.exposition.store import Exposition
from exporter.web.assets import CONTENT_SECURITY_POLICY
from exporter.web.landing import render_landing_sliced
from exporter.web.negotiation import gzip_accepted, negotiate
from exporter.web.pagecache import PageCache
from exporter.web.webconfig import WebConfigModel, install

Reloader = Callable[[], Awaitable[None]]
EXPOSITION_KEY = web.AppKey("exposition", Exposition)
RELOAD_KEY: web.AppKey[Reloader] = web.AppKey("reload")
PAGE_KEY = web.AppKey("page", PageCache)
# Bytes handed to the connection at a time. Whatever the socket does not take at once is
# copied into the connection's buffer: a 30 MB body written whole to eight slow scrapers
# was 240 MB of copies.
WRITE = 256 << 10
YIELD_EVERY = 1 << 20  # bytes of a body written between two turns of the event loop


async def metrics(request: web.Request) -> web.StreamResponse:
    """The exposition, in the format and encoding the client asked for."""
    exposition = request.app[EXPOSITION_KEY]
    fmt = negotiate(request.headers.get("Accept"))
    gzip = gzip_accepted(request.headers.get("Accept-Encoding"))
    body = await exposition.serve(fmt, gzip)
    response = web.StreamResponse(
        headers={"Content-Type": fmt.value, "Vary": "Accept, Accept-Encoding"}
    )
    if gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.content_length = body.length
    await response.prepare(request)
    # aiohttp sends whatever is written, even to HEAD; a body there would be read as the
    # start of the next response on a keep-alive connection.
    if request.method != hdrs.METH_HEAD:
        written = 0
        for chunk in body:
            view = memoryview(chunk)
            for start in range(0, len(view), WRITE):
                await response.write(view[start : start + WRITE])
            written += len(view)
            if written >= YIELD_EVERY:
                # A write returns at once while the socket takes it: without this, a whole
                # body to a fast reader was one turn of the event loop (140 ms at 100,000
                # objects, plain text being inflated as it went).
                written = 0
                await asyncio.sleep(0)
    await response.write_eof()
    return response


async def healthy(request: web.Request) -> web.Response:
    """The process is serving."""
    return web.Response(text="Healthy.\n")


async def ready(request: web.Request) -> web.Response:
    """Ready once the first poll cycle has finished, so a new pod serves no empty metrics."""
    if request.app[EXPOSITION_KEY].snapshot.ready:
        return web.Response(text="Ready.\n")
    return web.Response(status=503, text="Not ready: the first poll cycle is still running.\n")


def cross_site(request: web.Request) -> bool:
    """Whether a browser sent this request from another site's page.

    Browsers send Origin with every POST (forms and no-cors fetches included) and, lately,
    Sec-Fetch-Site; curl, configmap-reload and other tools send neither. A browser's request
    is accepted only when the page was reached by an IP address or ``localhost``: a DNS name
    can be rebound to this machine's address by whoever owns it, and then a page of theirs
    is "same-origin" with the exporter, Host and Origin alike.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get(hdrs.ORIGIN)
    if fetch_site is None and origin is None:
        return False
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    try:
        host = URL(f"//{request.host}")
        if not _unrebindable(host.host or ""):
            return True
        if origin is None:
            return False
        return URL(origin).host_port_subcomponent != host.host_port_subcomponent
    except ValueError:  # a Host or Origin that is not one: refused, never a 500
        return True


def _unrebindable(host: str) -> bool:
    """An IP address or localhost: names no one else's DNS can point here."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


async def reload(request: web.Request) -> web.Response:
    """Reload the configuration file, as SIGHUP does; refused to pages of other sites."""
    if cross_site(request):
        return web.Response(
            status=403, text="Reload refused: cross-site requests cannot reload the exporter.\n"
        )
    try:
        await request.app[RELOAD_KEY]()
    except ConfigError as exc:
        return web.Response(
            status=400,
            text="Reload failed; still running the old configuration:\n" + str(exc) + "\n",
        )
    return web.Response(text="Configuration reloaded.\n")


# The page runs its own inline script and style and nothing else, and is never framed.
LANDING_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


async def landing(request: web.Request) -> web.Response:
    """Version, links and a table of targets."""
    page = await request.app[PAGE_KEY].page(request.app[EXPOSITION_KEY].snapshot)
    response = web.Response(body=page, content_type="text/html", charset="utf-8")
    response.headers.update(LANDING_HEADERS)
    return response


def build_app(
    exposition: Exposition,
    reloader: Reloader,
    web_config: WebConfigModel | None = None,
    notices: Callable[[], tuple[str, ...]] = tuple,
) -> web.Application:
    """The exporter's aiohttp application; ``notices`` are warnings about the exporter's
    own setup that the status page shows after what needs attention."""
    app = web.Application()
    app[EXPOSITION_KEY] = exposition
    app[RELOAD_KEY] = reloader
    app[PAGE_KEY] = PageCache(lambda snap: render_landing_sliced(snap, notices=notices()))
    if web_config is not None:
        install(app, web_config)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload)
    app.router.add_get("/", landing)
    return app
