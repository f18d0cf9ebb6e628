"""Wires configuration, client, poller, scheduler and HTTP server into a running exporter."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.cloud.auth import AkSkAuth, Authenticator, IamTokenAuth
from exporter.cloud.client import HuaweiCloudClient
from exporter.cloud.keys.metrics import KeyMetrics
from exporter.cloud.keys.renewal import TemporaryKeyAuth
from exporter.cloud.keys.sources import fetcher_for
from exporter.cloud.metrics import ApiMetrics
from exporter.cloud.transport import RetryPolicy, Transport
from exporter.config.errors import ConfigError
from exporter.config.settings import PollSettings, Settings
from exporter.config.watch import ConfigWatcher
from exporter.domain.credentials import AkSkCredentials, Credentials, IamCredentials
from exporter.domain.sharding import Shard
from exporter.domain.state import Snapshot
from exporter.exposition.live import ReloadMetrics, live_registry
from exporter.exposition.selection import ALL, Selection
from exporter.exposition.store import Exposition
from exporter.logs import Redactor
from exporter.needs import families, unmet
from exporter.polling.accounts import ProjectFinder
from exporter.polling.assignment import assign, hashed_targets
from exporter.polling.budget import Budget
from exporter.polling.jobs import JobWatcher
from exporter.polling.merge import snapshot
from exporter.polling.poller import Poller
from exporter.polling.scheduler import PollScheduler
from exporter.polling.usage import UsageWatcher
from exporter.storage.statefile import StateFile
from exporter.support.memory import limit_arenas
from exporter.web.listener import Limits
from exporter.web.listener import listen as serve
from exporter.web.server import build_app
from exporter.web.webconfig import WebConfigModel, ssl_context

log = logging.getLogger(__name__)

# Collections of the middle generation between two automatic full collections (Python's
# default: 10).
FULL_COLLECTION_EVERY = 1000

SettingsLoader = Callable[[], Settings]


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where the HTTP server listens; an empty host means every interface."""

    host: str | None
    port: int

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        """``:9887``, ``127.0.0.1:9887`` or ``[::1]:9887``."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(
                [
                    f"--web.listen-address: {text!r} is not HOST:PORT; "
                    "write e.g. :9887 or 127.0.0.1:9887"
                ]
            )
        host = host.strip("[]")
        return cls(host or None, int(port))


def own_metrics(
    registry: CollectorRegistry, redactor: Redactor
) -> tuple[ApiMetrics, KeyMetrics, ReloadMetrics]:
    """The exporter's own counters and gauges, registered in ``registry``."""
    return ApiMetrics(registry, redact=redactor), KeyMetrics(registry), ReloadMetrics(registry)


def served_families() -> dict[str, str]:
    """Every metric family an exporter serves, name to type (for ``--check-config``)."""
    registry = live_registry()
    own_metrics(registry, Redactor())
    return families(registry)


class Exporter:
    """The running exporter: polls on schedule and serves what it learnt."""

    def __init__(
        self,
        settings: Settings,
        *,
        loader: SettingsLoader | None = None,
        redactor: Redactor | None = None,
        web_config: WebConfigModel | None = None,
        retry_policy: RetryPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        limits: Limits | None = None,
        shard: Shard | None = None,
        storage_path: str | None = None,
        clock: Callable[[], float] = time.time,
        config_path: str | None = None,
        config_check_interval: float = 0.0,
        select: Selection = ALL,
    ) -> None:
        self._limits = limits or Limits()
        self._clock = clock
        # Reloads when the configuration file's content changes (0: only on request).
        self._watch = (
            ConfigWatcher(config_path, self.reload, config_check_interval)
            if loader is not None and config_path and config_check_interval > 0
            else None
        )
        self._loader = loader
        self._settings = settings
        self._redactor = redactor or Redactor()
        self._redactor.set_secrets(settings.secrets)
        self._web_config = web_config
        self._retry_policy = retry_policy
        self._own_session = session is None
        self._session = session or aiohttp.ClientSession(
            # The poller bounds requests in flight (poll.concurrency, at most 1024); the pool
            # keeps that many connections alive and caches DNS answers for five minutes.
            connector=aiohttp.TCPConnector(limit=1024, ttl_dns_cache=300),
        )
        self.registry = live_registry()
        self.api_metrics, self.key_metrics, self.reload_metrics = own_metrics(
            self.registry, self._redactor
        )
        self.reload_metrics.record(True)
        self.state_file = StateFile(storage_path, self.registry) if storage_path else None
        self._restoring: asyncio.Task[None] | None = None
        # The exposition owns the served snapshot; the poller hands it changes.
        shard = shard or Shard()
        first = assign(shard, settings.targets, hashed_targets(shard, settings.targets),
                       settings.sweeps)  # fmt: skip
        self.exposition = Exposition(
            self.registry, snapshot(first, settings.poll.interval), select=select
        )
        self._select = select
        known = families(self.registry) if select.patterns else {}
        self._dropped = select.dropped(known.items())
        self._unmet = unmet(select, known)
        # One transport and one client for the whole life of the process: a reload
        # reconfigures them, so IAM tokens and the rate limiter's state survive it.
        poll = settings.poll
        self._transport = Transport(
            self._session, self.api_metrics, timeout=poll.timeout, policy=self._policy(poll),
            network=settings.network,
        )  # fmt: skip
        self.client = HuaweiCloudClient(
            self._transport, self.api_metrics, self._authenticator, redact=self._redactor
        )
        self._configure_client(settings)
        # Like the client, the finder lives as long as the process: a reload keeps the
        # project lists of accounts it did not change.
        self.finder = ProjectFinder(
            self.client, settings.accounts, refresh=poll.projects_refresh_interval, clock=clock
        )
        self.poller = Poller(
            self.client,
            self.exposition,
            settings.targets,
            poll=poll,
            sweeps=settings.sweeps,
            finder=self.finder,
            shard=shard,
            jobs=JobWatcher(self.client, clock=clock),
            usage=UsageWatcher(self.client, clock=clock),
            clock=clock,
        )
        self._scheduler = PollScheduler(
            self._scheduled_cycle,
            poll.interval,
            self._scheduled_transitional,
            poll.transitional_interval,
        )
        # Cycles and quick polls of transitional objects never overlap: each would merge
        # answers computed against a snapshot the other is about to replace.
        self._polling = asyncio.Lock()
        self._background: set[asyncio.Task[object]] = set()
        self._runner: web.AppRunner | None = None
        self.addresses: list[tuple[str, int]] = []

    def _policy(self, poll: PollSettings) -> RetryPolicy:
        return self._retry_policy or RetryPolicy(retries=poll.retries)

    def _authenticator(self, credentials: Credentials) -> Authenticator:
        if isinstance(credentials, IamCredentials):
            # After an IAM failure, no new login for one poll interval (failed logins lock
            # the user); the client updates this on reload.
            return IamTokenAuth(
                credentials,
                self._transport,
                failure_backoff=self._settings.poll.interval,
                on_token=self._redactor.add,
            )
        if isinstance(credentials, AkSkCredentials):
            return AkSkAuth(credentials)
        fetcher = fetcher_for(credentials, self._transport, self._redactor.add)
        return TemporaryKeyAuth(fetcher, self.key_metrics, clock=self._clock)

    def _notices(self) -> tuple[str, ...]:
        """Warnings about this exporter's own setup, for the status page."""
        notices = []
        if self._settings.network.insecure_skip_verify:
            notices.append(
                "http_client.tls_config.insecure_skip_verify is true: the cloud's TLS "
                "certificates are not verified; set tls_config.ca_file instead."
            )
        if self._dropped:
            notices.append(
                f"{self._select.describe()}: {len(self._dropped)} metric families are not "
                f"served: {', '.join(self._dropped)}."
            )
        if self._unmet:
            notices.append(
                f"Shipped alerts and dashboard panels that read them show nothing: "
                f"{'; '.join(self._unmet)}."
            )
        return tuple(notices)

    def _log_selection(self) -> None:
        if self._select.patterns:
            log.info(
                "%s: %d metric families not served: %s",
                self._select.describe(), len(self._dropped), ", ".join(self._dropped) or "none",
            )  # fmt: skip
        for need in self._unmet:
            log.warning("the shipped %s, which %s drops", need, self._select.describe())

    def _configure_client(self, settings: Settings) -> None:
        poll = settings.poll
        self._transport.configure(
            timeout=poll.timeout, policy=self._policy(poll), rate=poll.max_requests_per_second,
            network=settings.network,
        )  # fmt: skip
        if settings.network.insecure_skip_verify:
            log.warning(
                "http_client.tls_config.insecure_skip_verify is true: the cloud's TLS "
                "certificates are not verified, so anyone on the path can read and change "
                "every answer; set tls_config.ca_file instead"
            )
        self.client.retain(settings.credentials, iam_failure_backoff=poll.interval)

    async def _scheduled(self, work: Callable[[], Awaitable[object]], what: str) -> None:
        """Run one scheduled poll so that stop() can cancel it and no error escapes."""
        task = asyncio.current_task()
        assert task is not None
        self._background.add(task)
        try:
            await work()
        except asyncio.CancelledError:
            # Only stop() cancels these; end quietly so the scheduler logs no error.
            log.info("%s in flight cancelled for shutdown", what)
        except Exception:
            log.exception("%s failed; the next one runs on schedule", what)
        finally:
            self._background.discard(task)

    async def _scheduled_cycle(self) -> None:
        await self._scheduled(self.run_cycle, "poll cycle")

    async def _scheduled_transitional(self) -> None:
        await self._scheduled(self.poll_transitional, "quick poll of transitional objects")

    async def run_cycle(self) -> Snapshot:
        """One poll cycle, then the state file written if anything in it changed."""
        await self.restore()
        async with self._polling:
            snapshot = await self.poller.run_cycle()
        await self._save(snapshot)
        return snapshot

    async def poll_transitional(self) -> None:
        """Between cycles, ask about objects in a transitional status; skipped while a
        cycle runs (it asks about them anyway)."""
        if self._polling.locked():
            return
        async with self._polling:
            snapshot = await self.poller.poll_transitional()
        if snapshot is not None:
            await self._save(snapshot)

    async def _save(self, snapshot: Snapshot) -> None:
        if self.state_file is not None:
            await self.state_file.save(snapshot)

    async def restore(self) -> None:
        """Serve the state file's states (once, before the first cycle; whoever comes while
        it runs waits for it)."""
        if self.state_file is None:
            return
        if self._restoring is None:
            self._restoring = asyncio.create_task(self._restore(self.state_file))
        await asyncio.shield(self._restoring)

    async def _restore(self, state_file: StateFile) -> None:
        # In a thread, which reads and validates the file a slice at a time (see
        # exporter.storage.codec), so that the server, listening already, answers probes.
        stored = await asyncio.to_thread(state_file.load)
        if stored.targets or stored.jobs or stored.usage:
            try:
                await self.poller.restore(stored.targets, stored.jobs, stored.usage)
            except Exception as exc:  # a state the file's checks let through: start fresh
                state_file.set_aside(f"{type(exc).__name__}: {exc}"[:200])

    async def start(self, listen: ListenAddress | None = None, *, schedule: bool = True) -> None:
        """Serve HTTP (when ``listen`` is given), restore the state file, and start the
        schedule. The server listens first: probes are answered while a large state file is
        read (``/-/ready`` waits for the first cycle, which waits for the file)."""
        if listen is not None:
            app = build_app(self.exposition, self.reload, self._web_config, self._notices)
            tls: ssl.SSLContext | None = None
            if self._web_config is not None and self._web_config.tls_server_config is not None:
                tls = ssl_context(self._web_config.tls_server_config)
            self._runner = await serve(app, listen.host, listen.port, tls, self._limits)
            self.addresses = [(str(a[0]), int(a[1])) for a in self._runner.addresses]
            log.info(
                "listening",
                extra={
                    "address": ", ".join(f"{h}:{p}" for h, p in self.addresses),
                    "tls": tls is not None,
                },
            )
        # Everything built so far (modules, schemas, the app) lives as long as the process;
        # moving it out of the collector's reach shortens every full collection, which
        # otherwise stalls the loop for tens of milliseconds with 10,000 targets. (Restored
        # state is frozen as every published snapshot is: a full collection over 100,000
        # restored objects would hold the loop for 150 ms.)
        gc.collect()
        gc.freeze()
        # Each published snapshot is frozen too (see Exposition.update); in between, a full
        # collection would scan only one cycle's survivors, and still cost 50 ms each, eight
        # times a cycle at 100,000 objects. Young generations are collected as usual.
        gc.set_threshold(*gc.get_threshold()[:2], FULL_COLLECTION_EVERY)
        limit_arenas()
        self._log_selection()
        if self._watch is not None:
            self._in_background(self._watch.run())
        await self.restore()
        if schedule:
            self._log_budget()
            self._scheduler.start()

    def _log_budget(self) -> None:
        budget = Budget.of(self._settings)
        log.log(
            logging.INFO if budget.fits else logging.WARNING, "poll budget: %s", budget.describe()
        )

    async def reload(self) -> None:
        """Load the configuration again and switch to it; on error keep the old one and raise."""
        if self._loader is None:
            log.warning("reload ignored: this exporter was not started from a configuration file")
            raise ConfigError(["reload: this exporter was not started from a configuration file"])
        try:
            # In a thread: reading, validating and resolving a large file takes seconds,
            # and a file that is not what it seems must not stall /metrics and probes.
            settings = await asyncio.to_thread(self._loader)
        except ConfigError as exc:
            self._rejected(exc)
            raise
        except Exception as exc:  # a bug, not a bad file: keep the traceback, keep running
            log.exception("reload failed unexpectedly")
            error = ConfigError([f"reload failed: {type(exc).__name__}"])
            self._rejected(error)
            raise error from None
        await self.apply(settings)
        self.reload_metrics.record(True)
        self.exposition.refresh_live()
        log.info("configuration reloaded", extra={"targets": len(settings.targets)})
        self._log_budget()

    def _rejected(self, error: ConfigError) -> None:
        self.reload_metrics.record(False)
        self.exposition.refresh_live()
        log.error(
            "reload rejected; keeping the running configuration: %s", "; ".join(error.problems)
        )

    async def apply(self, settings: Settings) -> None:
        """Switch to new settings.

        Kept targets keep their state, removed ones vanish at once, added ones are polled
        at once (not at the next scheduled cycle).
        """
        self._redactor.set_secrets(settings.secrets)
        self._settings = settings
        self._configure_client(settings)
        self.finder.reconfigure(settings.accounts, refresh=settings.poll.projects_refresh_interval)
        added, added_sweeps = self.poller.reconfigure(
            settings.targets, poll=settings.poll, sweeps=settings.sweeps
        )
        self._scheduler.reschedule(settings.poll.interval, settings.poll.transitional_interval)
        await self.poller.publish_current()
        if added or added_sweeps or settings.accounts:
            self._in_background(self.poller.poll_some(added, added_sweeps))

    def reload_soon(self) -> None:
        """Reload in the background (for SIGHUP); a rejected file is logged by reload()."""

        async def reload() -> None:
            with contextlib.suppress(ConfigError):  # the old configuration keeps running
                await self.reload()

        self._in_background(reload())

    def _in_background(self, work: Coroutine[object, object, object]) -> None:
        """Run ``work`` as a task that stop() cancels."""
        task: asyncio.Task[object] = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def stop(self) -> None:
        """Stop scheduling, cancel the cycle in flight, stop serving, close connections."""
        self._scheduler.shutdown()
        pending = list(self._background)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.client.close()
        if self._own_session:
            await self._session.close()
