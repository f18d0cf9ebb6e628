"""Default service endpoints by region, as published in the official SDK's region files."""

from __future__ import annotations

# ap-southeast-1 is the one ModelArts region served from the .cn domain.
_MODELARTS_REGIONS = (
    "cn-north-1", "cn-north-2", "cn-north-4", "cn-north-9", "cn-north-11", "cn-north-12",
    "cn-south-1", "cn-east-3", "cn-east-4", "cn-southwest-2", "cn-southwest-3",
    "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "la-south-2", "la-north-2",
    "sa-brazil-1", "af-south-1", "af-north-1", "tr-west-1", "me-east-1",
)  # fmt: skip
MODELARTS_ENDPOINTS: dict[str, str] = {
    **{r: f"https://modelarts.{r}.myhuaweicloud.com" for r in _MODELARTS_REGIONS},
    "ap-southeast-1": "https://modelarts.ap-southeast-1.myhuaweicloud.cn",
}

# WorkspaceApp (application streaming) is split between two host prefixes by region.
_APPSTREAM_REGIONS = ("cn-north-4", "cn-north-9", "cn-east-3", "cn-south-1", "cn-southwest-2")
_WORKSPACE_REGIONS = (
    "la-south-2", "sa-brazil-1", "la-north-2", "ap-southeast-1", "ap-southeast-2",
    "ap-southeast-3", "cn-east-5", "me-east-1", "af-south-1", "af-north-1", "tr-west-1",
    "cn-north-11",
)  # fmt: skip
WORKSPACE_ENDPOINTS: dict[str, str] = {
    **{r: f"https://appstream.{r}.myhuaweicloud.com" for r in _APPSTREAM_REGIONS},
    **{r: f"https://workspace.{r}.myhuaweicloud.com" for r in _WORKSPACE_REGIONS},
}

DEFAULT_IAM_ENDPOINT = "https://iam.myhuaweicloud.com"
