"""Response bodies of the APIs the exporter calls: objects parsed leniently, list envelopes
strictly.

Unknown fields are ignored and every field is optional: the cloud adds fields and statuses
without notice, and an undocumented value must never fail a poll. Interpreting statuses is
the metrics layer's job.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, Strict

# Every paged list is asked for this many a page: a page with more is not an answer to it.
MAX_PAGE_ITEMS = 100
# A list's total beyond this is not believed (a sweep reads at most about 100,000 objects).
MAX_COUNT = 10_000_000
# An unpaged list (dev-server images, IAM projects) holding more than this is not believed.
MAX_LIST_ITEMS = 100_000
# The dev-server list serves up to this many a page (its ``limit`` is 0..1024).
MAX_DEV_SERVER_PAGE = 1024
# Dev servers one answer of every user's may hold: it takes no limit, so it may come whole.
MAX_ALL_DEV_SERVERS = 50_000

Count = Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class ListModel(_Lenient):
    """A list answer: its envelope is checked strictly (a list that is not one must never
    pass for an empty one); its items one by one, so that one bad item costs only itself."""

    ITEMS: ClassVar[str]  # the field that holds the items
    ITEM: ClassVar[type[BaseModel]]  # the model of one item


class ObjectModel(_Lenient):
    """A detail answer; ``object_id`` is the ID it says it describes."""

    @property
    def object_id(self) -> str | None:
        """The answer's own ID field."""
        raise NotImplementedError


class DevServerImageModel(ObjectModel):
    """``GET /v1/{project_id}/dev-servers/images/{id}``."""

    image_id: str | None = None
    name: str | None = None
    arch: str | None = None
    server_type: str | None = None
    status: str | None = None

    @property
    def object_id(self) -> str | None:
        """``image_id``."""
        return self.image_id


class ImageRefModel(_Lenient):
    """``image_ref`` of an image server."""

    id: str | None = None
    image_type: str | None = None
    spce_code: str | None = None
    product_id: str | None = None


class AccountModel(_Lenient):
    """One entry of ``authorize_accounts``."""

    account: str | None = None
    account_type: str | None = None
    domain: str | None = None


class ImageServerModel(ObjectModel):
    """``GET /v1/{project_id}/image-servers/{server_id}``."""

    id: str | None = None
    name: str | None = None
    description: str | None = None
    image_ref: ImageRefModel | None = None
    server_group_id: str | None = None
    app_group_id: str | None = None
    server_id: str | None = None
    instance_id: str | None = None
    image_id: str | None = None
    status: str | None = None
    authorize_accounts: list[AccountModel] | None = Field(default=None)
    create_time: str | None = None
    update_time: str | None = None
    enterprise_project_id: str | None = None

    @property
    def object_id(self) -> str | None:
        """``id``."""
        return self.id


class TokenModel(_Lenient):
    """The part of IAM's ``POST /v3/auth/tokens`` answer the exporter needs."""

    expires_at: str


class TokenResponseModel(_Lenient):
    """IAM's token answer body."""

    token: TokenModel


class DevServerImageListModel(ListModel):
    """``GET /v1/{project_id}/dev-servers/images``: everything in one answer, with paging
    fields but no paging parameters."""

    ITEMS: ClassVar[str] = "data"
    ITEM: ClassVar[type[BaseModel]] = DevServerImageModel

    current: int | None = None
    pages: Count | None = None
    size: int | None = None
    total: Count | None = None
    data: Annotated[list[DevServerImageModel], Field(max_length=MAX_LIST_ITEMS)]


class ImageServerListModel(ListModel):
    """``GET /v1/{project_id}/image-servers?offset=&limit=``: one page; ``count`` is the total."""

    ITEMS: ClassVar[str] = "items"
    ITEM: ClassVar[type[BaseModel]] = ImageServerModel

    count: Count
    items: Annotated[list[ImageServerModel], Field(max_length=MAX_PAGE_ITEMS)]


class ProjectModel(_Lenient):
    """One entry of IAM's ``GET /v3/auth/projects``."""

    id: str | None = None
    name: str | None = None
    enabled: bool | None = None
    is_domain: bool | None = None
    domain_id: str | None = None
    parent_id: str | None = None


class ProjectListModel(ListModel):
    """IAM's ``GET /v3/auth/projects`` answer."""

    ITEMS: ClassVar[str] = "projects"
    ITEM: ClassVar[type[BaseModel]] = ProjectModel

    projects: Annotated[list[ProjectModel], Field(max_length=MAX_LIST_ITEMS)]


class DomainModel(_Lenient):
    """One entry of IAM's ``GET /v3/auth/domains``."""

    id: str | None = None
    name: str | None = None
    enabled: bool | None = None


class DomainListModel(ListModel):
    """IAM's ``GET /v3/auth/domains`` answer: the domains the credentials belong to."""

    ITEMS: ClassVar[str] = "domains"
    ITEM: ClassVar[type[BaseModel]] = DomainModel

    domains: Annotated[list[DomainModel], Field(max_length=MAX_PAGE_ITEMS)]


class CallerIdentityModel(_Lenient):
    """STS ``GET /v5/caller-identity``: the account (domain) the caller belongs to."""

    account_id: str | None = None


class JobModel(_Lenient):
    """One item of ``GET /v1/{project_id}/image-server-jobs``."""

    id: str | None = None
    job_type: str | None = None
    status: str | None = None
    begin_time: str | None = None
    end_time: str | None = None


class JobListModel(ListModel):
    """A page of image build jobs; ``count`` is the total."""

    ITEMS: ClassVar[str] = "items"
    ITEM: ClassVar[type[BaseModel]] = JobModel

    count: Count
    items: Annotated[list[JobModel], Field(max_length=MAX_PAGE_ITEMS)]


class ResourceInfoModel(_Lenient):
    """``job_resource_info`` of a sub-job: what it acts on."""

    resource_id: str | None = None
    resource_name: str | None = None


class ExecuteInfoModel(_Lenient):
    """``job_execute_info`` of a sub-job: why it failed."""

    error_code: str | None = None
    error_message: str | None = None


class SubJobModel(_Lenient):
    """One item of ``GET /v1/{project_id}/image-server-sub-jobs``."""

    id: str | None = None
    job_id: str | None = None
    job_type: str | None = None
    status: str | None = None
    begin_time: str | None = None
    end_time: str | None = None
    job_resource_info: ResourceInfoModel | None = None
    job_execute_info: ExecuteInfoModel | None = None


class SubJobListModel(ListModel):
    """A page of sub-jobs; ``count`` is the total."""

    ITEMS: ClassVar[str] = "items"
    ITEM: ClassVar[type[BaseModel]] = SubJobModel

    count: Count
    items: Annotated[list[SubJobModel], Field(max_length=MAX_PAGE_ITEMS)]


class DevServerModel(_Lenient):
    """One item of ``GET /v1/{project_id}/dev-servers`` (a ServerResponse): only what says
    which image the server runs is read; network, volume and billing details are ignored."""

    id: str | None = None
    name: str | None = None
    status: str | None = None
    image: DevServerImageModel | None = None


class DevServerListModel(ListModel):
    """A page of dev servers: ``total`` is the list's length (when said)."""

    ITEMS: ClassVar[str] = "data"
    ITEM: ClassVar[type[BaseModel]] = DevServerModel

    current: int | None = None
    pages: Count | None = None
    size: int | None = None
    total: Count | None = None
    data: Annotated[list[DevServerModel], Field(max_length=MAX_DEV_SERVER_PAGE)]


class AllDevServersModel(DevServerListModel):
    """Every user's dev servers (``GET /dev-servers/all``), which may come in one answer."""

    data: Annotated[list[DevServerModel], Field(max_length=MAX_ALL_DEV_SERVERS)]
