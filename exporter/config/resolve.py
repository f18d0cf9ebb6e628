"""Resolution: a validated configuration model turned into Settings.

Secret files and environment variables are read here, and every rule that relates
fields is checked, each problem named by the path of the field to change.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import replace

from exporter.cloud.network import Network
from exporter.cloud.regions import MODELARTS_ENDPOINTS, WORKSPACE_ENDPOINTS
from exporter.config.credentials import (
    DEFAULT_STS_ENDPOINT,
    ENV_STS_ENDPOINT,
    EXAMPLE_PROJECT_ID,
    in_clear_only_if_safe,
    resolve_credentials,
)
from exporter.config.errors import ConfigError
from exporter.config.schema import (
    AccountModel,
    ConfigModel,
    CredentialsModel,
    DiscoverDevServerImagesModel,
    DiscoverImageServersModel,
    DiscoverModel,
    HttpClientModel,
    TargetModel,
)
from exporter.config.settings import Settings
from exporter.domain.accounts import Account
from exporter.domain.credentials import Credentials
from exporter.domain.targets import Discovery, Resource, Sweep, SweepKey, Target, TargetKey


def _endpoint(
    override: str | None,
    region: str | None,
    table: Mapping[str, str],
    where: str,
    key: str,
    problems: list[str],
) -> str | None:
    if override:
        return override
    if region is None:
        problems.append(f"{where}: set region (e.g. cn-north-4) or {key}")
        return None
    if region not in table:
        problems.append(
            f"{where}.region: {region!r} has no known {key.split('_', maxsplit=1)[0]} endpoint; "
            "set "
            f"{where}.{key}, or use one of: {', '.join(sorted(table))}"
        )
        return None
    return table[region]


def _discovery(model: DiscoverDevServerImagesModel | DiscoverImageServersModel) -> Discovery:
    def anchored(pattern: str | None) -> re.Pattern[str] | None:
        return re.compile(pattern) if pattern is not None else None  # used with fullmatch

    return Discovery(
        server_type=getattr(model, "server_type", None),
        enterprise_project_id=getattr(model, "enterprise_project_id", None),
        servers=getattr(model, "servers", "all"),
        name_include=anchored(model.name_include),
        name_exclude=anchored(model.name_exclude),
    )


def _unique(
    ids: list[str],
    resource: Resource,
    project_id: str,
    where: str,
    seen: dict[TargetKey, str],
    problems: list[str],
) -> list[TargetKey]:
    """The keys of ``ids`` not listed before (anywhere in the file); duplicates reported."""
    keys = []
    for j, object_id in enumerate(ids):
        key = TargetKey(resource, project_id, object_id)
        here = f"{where}[{j}]"
        if key in seen:
            problems.append(
                f"{here}: {object_id!r} in project {project_id!r} is listed already at "
                f"{seen[key]}; remove one"
            )
        else:
            seen[key] = here
            keys.append(key)
    return keys


def _resolve_targets(
    models: list[TargetModel],
    default: Credentials | None,
    env: Mapping[str, str],
    problems: list[str],
    notes: list[str],
) -> tuple[tuple[Target, ...], tuple[Sweep, ...]]:
    targets: list[Target] = []
    sweeps: dict[SweepKey, Sweep] = {}
    seen: dict[TargetKey, str] = {}
    swept: dict[SweepKey, str] = {}
    for i, t in enumerate(models):
        where = f"targets[{i}]"
        if t.project_id == EXAMPLE_PROJECT_ID:
            problems.append(
                f"{where}.project_id: {t.project_id!r} is the example's placeholder; put your "
                "project ID there (32 hexadecimal characters: console, My Credentials, "
                "Projects), and your objects' IDs under it"
            )
            continue
        discover = t.discover or DiscoverModel()
        if not t.devserver_images and not t.image_servers and discover == DiscoverModel():
            problems.append(
                f"{where}: lists no devserver_images and no image_servers and discovers "
                "nothing; add an ID, or discover: {devserver_images: {}, image_servers: {}}"
            )
            continue
        credentials = default
        if t.credentials is not None:
            credentials = resolve_credentials(
                t.credentials, env, f"{where}.credentials", problems, top=False, notes=notes
            )
        groups = (
            (Resource.DEVSERVER_IMAGE, t.devserver_images, discover.devserver_images,
             t.modelarts_endpoint, MODELARTS_ENDPOINTS, "modelarts_endpoint", "devserver_images"),
            (Resource.IMAGE_SERVER, t.image_servers, discover.image_servers,
             t.workspace_endpoint, WORKSPACE_ENDPOINTS, "workspace_endpoint", "image_servers"),
        )  # fmt: skip
        for resource, ids, found_by, override, table, key, list_name in groups:
            if not ids and found_by is None:
                continue
            endpoint = _endpoint(override, t.region, table, where, key, problems)
            keys = _unique(ids, resource, t.project_id, f"{where}.{list_name}", seen, problems)
            skey = SweepKey(resource, t.project_id)
            if found_by is not None and skey in swept:
                problems.append(
                    f"{where}.discover.{list_name}: project {t.project_id!r} is discovered "
                    f"already at {swept[skey]}; keep one discover block per project"
                )
            elif found_by is not None:
                swept[skey] = f"{where}.discover.{list_name}"
            if endpoint is None or credentials is None:
                continue
            if not in_clear_only_if_safe(endpoint, credentials, f"{where}.{key}", problems):
                continue
            targets += [Target(k, endpoint, credentials) for k in keys]
            if found_by is not None and skey not in sweeps:
                sweeps[skey] = Sweep(skey, endpoint, credentials, _discovery(found_by))
    # IDs listed by hand in a swept project belong to its sweep, wherever they were listed.
    by_sweep: dict[SweepKey, list[str]] = {}
    for target in targets:
        by_sweep.setdefault(SweepKey(target.key.resource, target.key.project_id), []).append(
            target.key.id
        )
    resolved = tuple(replace(s, configured=tuple(by_sweep.get(k, ()))) for k, s in sweeps.items())
    return tuple(targets), resolved


def _resolve_accounts(
    models: list[AccountModel],
    default: Credentials | None,
    env: Mapping[str, str],
    problems: list[str],
    notes: list[str],
) -> tuple[Account, ...]:
    accounts: list[Account] = []
    names: dict[str, str] = {}
    for i, a in enumerate(models):
        where = f"accounts[{i}]"
        if a.name in names:
            problems.append(f"{where}.name: {a.name!r} is taken by {names[a.name]}; rename one")
            continue
        names[a.name] = where
        credentials = default
        if a.credentials is not None:
            credentials = resolve_credentials(
                a.credentials, env, f"{where}.credentials", problems, top=False, notes=notes
            )
        # Without a discover block an account watches everything in every project.
        discover = a.discover or DiscoverModel.model_validate(
            {"devserver_images": {}, "image_servers": {}}
        )
        discovery = {
            resource: _discovery(model)
            for resource, model in (
                (Resource.DEVSERVER_IMAGE, discover.devserver_images),
                (Resource.IMAGE_SERVER, discover.image_servers),
            )
            if model is not None
        }
        if not discovery:
            problems.append(f"{where}.discover: discovers nothing; remove it to discover all")
        overrides = {Resource.DEVSERVER_IMAGE: a.modelarts_endpoint,
                     Resource.IMAGE_SERVER: a.workspace_endpoint}  # fmt: skip
        tables = {Resource.DEVSERVER_IMAGE: MODELARTS_ENDPOINTS,
                  Resource.IMAGE_SERVER: WORKSPACE_ENDPOINTS}  # fmt: skip
        known = set(MODELARTS_ENDPOINTS) | set(WORKSPACE_ENDPOINTS)
        for j, region in enumerate(a.regions or ()):
            if region not in known and not all(overrides.values()):
                problems.append(
                    f"{where}.regions[{j}]: {region!r} has no known endpoint; use one of "
                    f"{', '.join(sorted(known))}, or set modelarts_endpoint and workspace_endpoint"
                )
        if credentials is None:
            continue
        accounts.append(
            Account(
                name=a.name,
                credentials=credentials,
                iam_endpoint=a.iam_endpoint,
                sts_endpoint=a.sts_endpoint or env.get(ENV_STS_ENDPOINT) or DEFAULT_STS_ENDPOINT,
                domain_id=a.domain_id,
                regions=frozenset(a.regions) if a.regions is not None else None,
                project_include=re.compile(a.project_include) if a.project_include else None,
                project_exclude=re.compile(a.project_exclude) if a.project_exclude else None,
                endpoints={r: overrides[r] or tables[r] for r in Resource},
                discovery=discovery,
            )
        )
    return tuple(accounts)


def resolve(model: ConfigModel, env: Mapping[str, str]) -> Settings:
    """Turn a validated model into settings, reading secret files and checking cross-field rules."""
    problems: list[str] = []
    notes: list[str] = []
    credentials = None
    needs_default = (
        (not model.targets and not model.accounts)
        or any(t.credentials is None for t in model.targets)
        or any(a.credentials is None for a in model.accounts)
    )
    if needs_default or model.credentials != CredentialsModel():
        credentials = resolve_credentials(
            model.credentials, env, "credentials", problems, top=True, notes=notes
        )
    poll = model.poll
    if poll.timeout >= poll.interval:
        problems.append(
            f"poll.timeout: {poll.timeout:g}s is not shorter than poll.interval "
            f"({poll.interval:g}s); make the timeout shorter or the interval longer"
        )
    if poll.transitional_interval is not None and poll.transitional_interval >= poll.interval:
        problems.append(
            f"poll.transitional_interval: {poll.transitional_interval:g}s is not shorter than "
            f"poll.interval ({poll.interval:g}s); make it shorter, or remove it: every cycle "
            "polls transitional objects anyway"
        )
    if not model.targets and not model.accounts:
        problems.append(
            "targets: the list is empty; add at least one project with IDs to poll or to "
            "discover, or an account under accounts"
        )
    targets, sweeps = _resolve_targets(model.targets, credentials, env, problems, notes)
    accounts = _resolve_accounts(model.accounts, credentials, env, problems, notes)
    network = _network(model.http_client, env, problems)
    if problems:
        raise ConfigError(problems)
    return Settings(
        poll=model.poll, targets=targets, sweeps=sweeps, accounts=accounts,
        credential_notes=tuple(notes), network=network,
    )  # fmt: skip


def _network(model: HttpClientModel, env: Mapping[str, str], problems: list[str]) -> Network:
    """Proxies and TLS trust: the file's, else the environment's proxies."""
    tls = model.tls_config
    if tls.ca_file is not None:
        try:
            ssl.create_default_context().load_verify_locations(cafile=str(tls.ca_file))
        except (OSError, ssl.SSLError) as exc:
            problems.append(
                f"http_client.tls_config.ca_file: {str(tls.ca_file)!r} is not a readable PEM "
                f"certificate file ({getattr(exc, 'strerror', None) or exc}); give the CA's "
                "certificate in PEM"
            )
    no_proxy = None
    if model.no_proxy is not None:
        no_proxy = tuple(p.strip() for p in model.no_proxy.split(",") if p.strip())
    return Network.resolve(
        env, proxy_url=model.proxy_url, no_proxy=no_proxy,
        ca_file=str(tls.ca_file) if tls.ca_file else None,
        insecure_skip_verify=tls.insecure_skip_verify,
    )  # fmt: skip
