"""The IAM action each API call needs, as Huawei Cloud documents it.

Each action name is taken from the "Authorization Information" section of the API's page
in Huawei Cloud's API reference (identity policy-based authorization):
- Workspace, "Querying Specified Image Instances" (ShowImageServer):
  ``workspace:imageServer:get``;
- Workspace, "Querying Image Instances" (ListImageServers): ``workspace:imageServer:list``;
- Workspace, "Querying the Image Tasks of a Tenant" (ListImageJobs):
  ``workspace:images:listImageJobs``;
- Workspace, "Querying Image Subtasks" (ListImageSubJobs):
  ``workspace:imageServer:listImageSubJobs``;
- ModelArts, "Querying Lite Server Image Details" and "Querying the Lite Server Image
  List": no identity policy-based permission is required;
- ModelArts, permissions page: ``modelarts:devserver:listByUser`` for the caller's dev servers
  (``GET /dev-servers``, ListDevServers) and ``modelarts:devserver:list`` for every user's
  (``GET /dev-servers/all``, ListAllDevServers);
- IAM, "Listing Projects Accessible to an IAM User" (``GET /v3/auth/projects``) and
  "Querying Account Information Accessible to an IAM User" (``GET /v3/auth/domains``):
  no permission is required; obtaining a token with a password needs none either.
"""

from __future__ import annotations

# By the ``api`` label the client counts each call under.
ACTIONS: dict[str, str | None] = {
    "image_server": "workspace:imageServer:get",
    "image_server_list": "workspace:imageServer:list",
    "image_server_job_list": "workspace:images:listImageJobs",
    "image_server_sub_job_list": "workspace:imageServer:listImageSubJobs",
    "devserver_image": None,
    "devserver_image_list": None,
    "devserver_list": "modelarts:devserver:listByUser",
    "devserver_list_all": "modelarts:devserver:list",
    "iam_projects": None,
    "iam_domains": None,
    "iam_token": None,
}


def hint(api: str) -> str:
    """What to grant when ``api`` answers 403: the action it needs, or where to look."""
    action = ACTIONS.get(api)
    if action is not None:
        return f"the IAM user needs the action {action}"
    if api.startswith("devserver"):
        # Needs no identity-policy action; with role/policy-based authorization ModelArts
        # documents its permissions per system role.
        return (
            "with role/policy-based authorization the IAM user needs a ModelArts role for the "
            "project, such as ModelArts CommonOperations"
        )
    return "the IAM user lacks a permission this call needs"


def unauthorized_hint(detail: str) -> str | None:
    """What to check when a call answers 401, from what the gateway said."""
    text = detail.lower()
    if "signature expired" in text:
        return "the temporary key expired before it was renewed; see the credentials log lines"
    if "signature fail" in text:
        return (
            "check the secret key (it must belong to the access key) and this machine's clock "
            "(the cloud refuses signatures more than 15 minutes off)"
        )
    if "access key does not exist" in text or "ak not exist" in text:
        return "the access key ID is not known: check it, and that it was not deleted"
    if "token" in text:
        return "the IAM token was refused: check the password, domain name and IAM endpoint"
    return None
