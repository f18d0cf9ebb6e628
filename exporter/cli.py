"""Command line, in the conventions of Prometheus' own exporters."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from functools import partial

from exporter import __version__
from exporter.config.errors import ConfigError
from exporter.config.load import load_config
from exporter.config.settings import PollSettings, Settings, parse_duration
from exporter.domain.sharding import Shard
from exporter.exposition.selection import ALL, Selection
from exporter.exposition.textformat import Format
from exporter.logs import LEVELS, Redactor, setup_logging
from exporter.needs import selection_report
from exporter.once import report_failures
from exporter.polling.budget import Budget, actions_needed
from exporter.runtime import Exporter, ListenAddress, served_families
from exporter.simulator import SimulatorServer
from exporter.simulator.demo import build_demo_cloud, demo_accounts, demo_targets
from exporter.web.listener import DEFAULT_MAX_CONNECTIONS, Limits
from exporter.web.webconfig import WebConfigModel, load_web_config

log = logging.getLogger("exporter")
ENV_TOTAL_SHARDS = "HUAWEICLOUD_IMAGE_EXPORTER_TOTAL_SHARDS"

DEMO_POLL = PollSettings(
    interval=5.0, timeout=2.0, concurrency=4, retries=2, projects_refresh_interval=30.0
)


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return n


def _seconds(text: str) -> float:
    """A duration flag (60, 90s, 5m); 0 turns the thing off."""
    if text.strip() in ("0", "0s"):
        return 0.0
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to document the flags)."""
    p = argparse.ArgumentParser(
        prog="huaweicloud-image-exporter",
        description="Prometheus exporter for Huawei Cloud ModelArts dev-server images and "
        "Workspace image servers.",
    )
    p.add_argument(
        "--config.file", dest="config_file", metavar="PATH", help="configuration file (YAML)"
    )
    p.add_argument(
        "--web.listen-address",
        dest="listen",
        default=":9887",
        metavar="HOST:PORT",
        help="address to serve /metrics on (default :9887, every interface)",
    )
    p.add_argument(
        "--config.check-interval",
        dest="config_check_interval",
        type=_seconds,
        default=30.0,
        metavar="DURATION",
        help="reload when the configuration file's content changes, checked this often "
        "(default 30s; 0 only on SIGHUP or POST /-/reload): a Kubernetes ConfigMap is swapped in "
        "without a signal",
    )
    p.add_argument(
        "--web.config.file",
        dest="web_config",
        metavar="PATH",
        help="TLS and basic auth, in the Prometheus exporter-toolkit web-config format",
    )
    p.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=_positive_int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="connections served at once; more are closed at once (default 512)",
    )
    p.add_argument(
        "--shard",
        type=partial(_flag_ordinal, "--shard"),
        metavar="N",
        help="poll only shard N (0 to M-1) of the work; default 0",
    )
    p.add_argument(
        "--total-shards",
        type=partial(_flag_ordinal, "--total-shards"),
        metavar="M",
        help=f"how many shards share the work; default ${ENV_TOTAL_SHARDS}, else 1",
    )
    p.add_argument(
        "--shard.from-hostname",
        dest="shard_from_hostname",
        action="store_true",
        help="take N from the host name's trailing -<n> (a StatefulSet pod's ordinal)",
    )
    p.add_argument(
        "--storage.path",
        dest="storage_path",
        metavar="PATH",
        help="keep each object's state in this file across restarts (default: in memory only)",
    )
    chosen = p.add_mutually_exclusive_group()
    for allow, flag, what in (
        (True, "--metric-allowlist", "serve only the metric families whose name one of "
         "these comma-separated regular expressions matches whole (as in kube-state-metrics)"),
        (False, "--metric-denylist", "serve every metric family but those whose name one of "
         "these comma-separated regular expressions matches whole, e.g. '.*_timestamp_seconds'"),
    ):  # fmt: skip
        chosen.add_argument(
            flag, dest="select", type=partial(_selection, allow=allow), metavar="REGEXES",
            help=what,
        )  # fmt: skip
    p.add_argument("--log.level", dest="log_level", choices=LEVELS, default="info")
    p.add_argument("--log.format", dest="log_format", choices=("text", "json"), default="text")
    p.add_argument(
        "--version", action="version", version=f"huaweicloud-image-exporter {__version__}"
    )
    p.add_argument(
        "--check-config", action="store_true", help="validate the configuration and exit"
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="poll once, print the metrics to stdout and what failed to stderr; exit 0 only "
        "if nothing failed",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="run against a built-in simulated cloud on loopback (no account needed)",
    )
    return p


def _selection(text: str, *, allow: bool) -> Selection:
    try:
        return Selection.parse(text, allow=allow)
    except ValueError as exc:  # argparse names the flag itself
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[1]) from None


def _flag_ordinal(flag: str, text: str) -> int:
    try:
        return _ordinal(text, flag)
    except ConfigError as exc:  # argparse names the flag itself
        raise argparse.ArgumentTypeError(exc.problems[0].removeprefix(f"{flag}: ")) from None


def _ordinal(text: str, what: str) -> int:
    """A whole number written in ASCII digits (``int()`` would also take "٣" or " 3 ")."""
    if not re.fullmatch(r"[0-9]{1,18}", text):
        raise ConfigError([f"{what}: {text!r} is not a whole number written in digits 0-9"])
    return int(text)


def shard_of(args: argparse.Namespace, env: Mapping[str, str], hostname: str) -> Shard:
    """This process's shard from the flags, the environment and the host name."""
    if args.shard is not None and args.shard_from_hostname:
        raise ConfigError(["--shard and --shard.from-hostname: give one of them, not both"])
    total: int | None = args.total_shards
    if total is None and env.get(ENV_TOTAL_SHARDS):
        total = _ordinal(env[ENV_TOTAL_SHARDS], ENV_TOTAL_SHARDS)
    index = args.shard or 0
    if args.shard_from_hostname:
        match = re.search(r"-([0-9]+)$", hostname)  # ASCII digits: "-٣" is no ordinal
        if match is None:
            raise ConfigError(
                [f"--shard.from-hostname: host name {hostname!r} does not end in -<number> "
                 "(as a StatefulSet's pods do); pass --shard N instead"]
            )  # fmt: skip
        index = int(match.group(1))
    try:
        return Shard(index, 1 if total is None else total)
    except ValueError as exc:
        raise ConfigError([f"--shard/--total-shards: {exc}"]) from None


def _load(args: argparse.Namespace) -> Settings:
    if not args.config_file:
        raise ConfigError(
            ["no configuration: pass --config.file PATH (see config/exporter.example.yaml), "
             "or --demo to run the built-in demo"]
        )  # fmt: skip
    return load_config(args.config_file)


async def _run(args: argparse.Namespace, redactor: Redactor, shard: Shard) -> int:
    web_config: WebConfigModel | None = (
        load_web_config(args.web_config) if args.web_config else None
    )
    listen = ListenAddress.parse(args.listen)
    simulator: SimulatorServer | None = None
    if args.demo:
        simulator = SimulatorServer(build_demo_cloud())
        endpoint = await simulator.start()
        settings = Settings(
            poll=DEMO_POLL, targets=demo_targets(endpoint), accounts=demo_accounts(endpoint)
        )
        loader = None
        log.info("demo mode: polling a simulated cloud", extra={"simulator": endpoint})
    else:
        settings = _load(args)
        loader = partial(_load, args)
    exporter = Exporter(
        settings,
        loader=loader,
        config_path=args.config_file,
        config_check_interval=args.config_check_interval,
        redactor=redactor,
        web_config=web_config,
        limits=Limits(max_connections=args.max_connections),
        shard=shard,
        storage_path=args.storage_path,
        select=args.select or ALL,
    )
    try:
        if args.once:
            snapshot = await exporter.run_cycle()
            sys.stdout.buffer.write(b"".join(exporter.exposition.body(Format.TEXT, gzip=False)))
            sys.stdout.flush()
            return 1 if report_failures(snapshot, redactor) else 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, exporter.reload_soon)
        await exporter.start(listen)
        await stop.wait()
        log.info("shutting down")
        return 0
    finally:
        await exporter.stop()
        if simulator is not None:
            await simulator.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``huaweicloud-image-exporter`` and ``python -m exporter``."""
    args = build_parser().parse_args(argv)
    redactor = setup_logging(args.log_level, args.log_format)
    try:
        shard = shard_of(args, os.environ, os.environ.get("HOSTNAME") or socket.gethostname())
        if args.check_config:
            settings = _load(args)
            if args.web_config:
                load_web_config(args.web_config)
            print(
                f"configuration OK: {len(settings.targets)} targets by ID, "
                f"{len(settings.sweeps)} sweeps, {len(settings.accounts)} accounts, "
                f"shard {shard.index} of {shard.total}; {Budget.of(settings).describe()}"
            )
            for note in settings.credential_notes:
                print(note)
            if args.select is not None:
                print(selection_report(args.select, served_families()))
            actions = ", ".join(actions_needed(settings)) or "none"
            print(
                f"IAM actions the exporter's user needs: {actions} (identity policies for "
                "each way of running are in deploy/iam/)"
            )
            return 0
        return asyncio.run(_run(args, redactor, shard))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return 1
    except OSError as exc:
        # Typically the listen address is taken or not permitted.
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return 1
