"""Accounts whose projects the exporter finds itself, and the projects it found."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from exporter.domain.credentials import Credentials
from exporter.domain.targets import Discovery, Resource


@dataclass(frozen=True, slots=True)
class Project:
    """A project an account can see; its region is the part of its name before any ``_``."""

    id: str
    name: str
    account: str

    @property
    def region(self) -> str:
        """``cn-north-4`` for ``cn-north-4`` and for a sub-project ``cn-north-4_team``."""
        return self.name.split("_", 1)[0]


@dataclass(frozen=True, slots=True)
class Account:
    """Where to list projects, which to keep, and what to discover in each."""

    name: str
    credentials: Credentials = field(repr=False, compare=False)
    iam_endpoint: str
    domain_id: str | None = None  # sent as X-Domain-Id with AK/SK signing
    regions: frozenset[str] | None = None
    project_include: re.Pattern[str] | None = None
    project_exclude: re.Pattern[str] | None = None
    # Where each resource is served: an override for every project, or by region.
    endpoints: Mapping[Resource, str | Mapping[str, str]] = field(default_factory=dict)
    discovery: Mapping[Resource, Discovery] = field(default_factory=dict)
    # Asked who the caller is when IAM lists no domain (or may not be asked): its account
    # ID is the domain ID, as the official SDK finds it.
    sts_endpoint: str = "https://sts.cn-north-4.myhuaweicloud.com"

    def wants(self, project: Project) -> bool:
        """Whether a found project is watched (by region and name)."""
        if self.regions is not None and project.region not in self.regions:
            return False
        if self.project_include is not None and not self.project_include.fullmatch(project.name):
            return False
        return self.project_exclude is None or not self.project_exclude.fullmatch(project.name)

    def endpoint(self, resource: Resource, region: str) -> str | None:
        """The endpoint of ``resource`` for a project in ``region``; None when unknown."""
        where = self.endpoints.get(resource)
        if where is None or isinstance(where, str):
            return where
        return where.get(region)
