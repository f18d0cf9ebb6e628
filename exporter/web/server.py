"""The HTTP endpoints: /metrics, /-/healthy, /-/ready, /-/reload and the landing page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from exporter.config.errors import ConfigError
from exporter.exposition.store import Exposition
from exporter.web.landing import render_landing
from exporter.web.negotiation import gzip_accepted, negotiate
from exporter.web.webconfig import WebConfigModel, install

Reloader = Callable[[], Awaitable[None]]
EXPOSITION_KEY = web.AppKey("exposition", Exposition)
RELOAD_KEY: web.AppKey[Reloader] = web.AppKey("reload")


async def metrics(request: web.Request) -> web.StreamResponse:
    """The exposition, in the format and encoding the client asked for."""
    exposition = request.app[EXPOSITION_KEY]
    fmt = negotiate(request.headers.get("Accept"))
    gzip = gzip_accepted(request.headers.get("Accept-Encoding"))
    chunks = exposition.body(fmt, gzip)
    response = web.StreamResponse(
        headers={"Content-Type": fmt.value, "Vary": "Accept, Accept-Encoding"}
    )
    if gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.content_length = sum(len(c) for c in chunks)
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
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


async def reload(request: web.Request) -> web.Response:
    """Reload the configuration file, as SIGHUP does."""
    try:
        await request.app[RELOAD_KEY]()
    except ConfigError as exc:
        return web.Response(
            status=400,
            text="Reload failed; still running the old configuration:\n" + str(exc) + "\n",
        )
    return web.Response(text="Configuration reloaded.\n")


async def landing(request: web.Request) -> web.Response:
    """Version, links and a table of targets."""
    page = render_landing(request.app[EXPOSITION_KEY].snapshot)
    return web.Response(text=page, content_type="text/html")


def build_app(
    exposition: Exposition, reloader: Reloader, web_config: WebConfigModel | None = None
) -> web.Application:
    """The exporter's aiohttp application."""
    app = web.Application()
    app[EXPOSITION_KEY] = exposition
    app[RELOAD_KEY] = reloader
    if web_config is not None:
        install(app, web_config)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload)
    app.router.add_put("/-/reload", reload)
    app.router.add_get("/", landing)
    return app
