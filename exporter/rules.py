"""Prometheus alerting rules for this exporter, generated so they can be tuned without editing.

``deploy/prometheus/alerts.yml`` and ``deploy/kubernetes/base/prometheusrule.yaml`` are this
module's output with the defaults. To tune thresholds, generate your own copy::

    huaweicloud-image-exporter-rules --stuck-after 2h --runbook-url https://wiki/runbook.md \
        > alerts.yml
    huaweicloud-image-exporter-rules --format prometheusrule --namespace monitoring > rule.yaml

``--pending-scale`` multiplies every ``for:`` period and rate window (0.01 turns 10 minutes
into 6 seconds), for demos and tests of the rules themselves.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from exporter.config.settings import parse_duration
from exporter.domain.jobs import LONG_BUILD

JOB = "huaweicloud-image-exporter"
DEFAULT_RUNBOOK = "https://github.com/huaweicloud-image-exporter/huaweicloud-image-exporter/blob/main/docs/runbook.md"
# Joins include job and instance so that two exporter replicas watching the same objects
# (a common HA set-up) never make a many-to-many match.
KEY = "job, instance, project_id, id"
# How long an object alert keeps firing after its series vanish: long enough to bridge an
# exporter restart (a failed scrape marks every series stale), short enough to resolve
# soon after the object really recovers.
RESTART_GAP = 300.0


@dataclass(frozen=True, slots=True)
class Tuning:
    """The knobs of the rules."""

    stuck_after: float = 3600.0
    pending_scale: float = 1.0
    runbook_url: str = DEFAULT_RUNBOOK
    job: str = JOB
    build_too_long: float = LONG_BUILD

    def period(self, seconds: float) -> str:
        """A Prometheus duration for ``seconds`` scaled by ``pending_scale`` (at least 1s)."""
        total = max(1, math.ceil(seconds * self.pending_scale))
        for unit, size in (("h", 3600), ("m", 60)):
            if total % size == 0:
                return f"{total // size}{unit}"
        return f"{total}s"


def _object(name_metric: str) -> str:
    return f"* on({KEY}) group_left(name) {name_metric}"


def alert_rules(t: Tuning) -> list[dict[str, Any]]:
    """The alerting rules, as Prometheus rule dictionaries."""
    job = f'job="{t.job}"'
    image_info = _object("huaweicloud_modelarts_devserver_image_info")
    server_info = _object("huaweicloud_workspace_image_server_info")
    window = t.period(300)
    job_window = t.period(900)
    failures = f"huaweicloud_workspace_image_job_failures_total{{{job}}}"

    def alert(
        name: str,
        expr: str,
        pending: float | None,
        severity: str,
        summary: str,
        description: str,
        keep_firing: float | None = None,
    ) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": name, "expr": expr}
        if pending:
            rule["for"] = t.period(pending)
        if keep_firing:
            rule["keep_firing_for"] = t.period(keep_firing)
        rule["labels"] = {"severity": severity}
        rule["annotations"] = {
            "summary": summary,
            "description": description,
            "runbook_url": f"{t.runbook_url}#{name.lower()}",
        }
        return rule

    return [
        alert(
            "HuaweiCloudImageExporterDown",
            f"up{{{job}}} == 0",
            300,
            "critical",
            "Huawei Cloud image exporter {{ $labels.instance }} is down",
            "Prometheus cannot scrape {{ $labels.instance }}; no image or image-server state is "
            "being collected.",
        ),
        alert(
            "HuaweiCloudImageExporterShardMissing",
            "count by (job) (count by (job, shard) "
            f"(huaweicloud_image_exporter_shard_info{{{job}}}))\n"
            "  < on(job) max by (job) "
            f"(huaweicloud_image_exporter_total_shards{{{job}}})\n"
            "or count by (job) (count by (job, total_shards) "
            f"(huaweicloud_image_exporter_shard_info{{{job}}})) > 1",
            300,
            "critical",
            "Shards of {{ $labels.job }} are missing or disagree on their number",
            "Prometheus does not see every shard 0 to M-1 of {{ $labels.job }}, or its shards "
            "were started with different --total-shards: part of the objects is not watched.",
        ),
        alert(
            "HuaweiCloudImageExporterPollStale",
            # Also fires when the first cycle never finishes: the exporter has been up for 3
            # intervals without a finished cycle. A just-started exporter stays silent.
            f"time() - huaweicloud_image_exporter_last_poll_timestamp_seconds{{{job}}}"
            f" > 3 * huaweicloud_image_exporter_poll_interval_seconds{{{job}}}"
            f"\nor ((time() - process_start_time_seconds{{{job}}})"
            f" > 3 * huaweicloud_image_exporter_poll_interval_seconds{{{job}}}"
            "\n  unless on(job, instance) "
            f"huaweicloud_image_exporter_last_poll_timestamp_seconds{{{job}}})",
            None,
            "warning",
            "Huawei Cloud image exporter {{ $labels.instance }} has not finished a poll cycle "
            "for 3 intervals",
            "The values it serves are stale. Check its log for errors and the API's reachability.",
        ),
        alert(
            "HuaweiCloudImageTargetUnreachable",
            f"huaweicloud_image_exporter_target_up{{{job}}} == 0",
            600,
            "warning",
            "Cannot poll {{ $labels.resource }} {{ $labels.id }}",
            "Polls of {{ $labels.resource }} {{ $labels.id }} in project {{ $labels.project_id }} "
            "have failed for 10 minutes; its metrics show the last known values. The landing "
            "page of {{ $labels.instance }} shows the last error.",
        ),
        alert(
            "HuaweiCloudImageSweepFailing",
            f"huaweicloud_image_exporter_sweep_up{{{job}}} == 0",
            600,
            "warning",
            "Cannot list {{ $labels.resource }} objects in project {{ $labels.project_id }}",
            "List sweeps of {{ $labels.resource }} in project {{ $labels.project_id }} have "
            "failed for 10 minutes: its objects show their last known values and new ones are "
            "not found. The log of {{ $labels.instance }} has the error; "
            "huaweicloud_image_exporter_sweep_list_allowed 0 means the IAM policy lacks the "
            "list action.",
        ),
        alert(
            "HuaweiCloudImageListIncomplete",
            f"huaweicloud_image_exporter_sweep_complete{{{job}}} == 0\n"
            "or label_replace("
            f"huaweicloud_image_exporter_jobs_complete{{{job}}} == 0, "
            '"resource", "build_job", "", "")',
            1800,
            "warning",
            "The {{ $labels.resource }} list of project {{ $labels.project_id }} has been "
            "incomplete for 30 minutes",
            "Every read of the {{ $labels.resource }} list in project {{ $labels.project_id }} "
            "for 30 minutes left objects out: objects it lacks are not found, none is removed, "
            "and counts from it (servers per image, jobs in flight) hold only what was read. "
            "The log of {{ $labels.instance }} says why once.",
        ),
        alert(
            "HuaweiCloudImageAccountListFailing",
            f"huaweicloud_image_exporter_account_up{{{job}}} == 0",
            1800,
            "warning",
            "Cannot list the projects of account {{ $labels.account }}",
            "The project list of account {{ $labels.account }} has failed for 30 minutes: the "
            "last list is still watched, but projects created or removed since are not seen. "
            "The log of {{ $labels.instance }} has the error.",
        ),
        alert(
            "HuaweiCloudImageObjectGone",
            f"huaweicloud_image_exporter_target_exists{{{job}}} == 0",
            300,
            "warning",
            "Configured {{ $labels.resource }} {{ $labels.id }} no longer exists",
            "The API answers 404 for {{ $labels.resource }} {{ $labels.id }} in project "
            "{{ $labels.project_id }}. Remove it from the configuration if it was deleted on "
            "purpose.",
        ),
        alert(
            "HuaweiCloudDevServerImageInactive",
            f'(huaweicloud_modelarts_devserver_image_status{{{job}, status="INACTIVE"}} == 1)\n'
            f"{image_info}",
            900,
            "warning",
            "Dev-server image {{ $labels.name }} is INACTIVE",
            "ModelArts Lite Server image {{ $labels.name }} ({{ $labels.id }}, project "
            "{{ $labels.project_id }}) is INACTIVE and cannot be used to create servers.",
        ),
        alert(
            "HuaweiCloudDevServerImageInactiveInUse",
            "(sum by (job, instance, project_id, id) (huaweicloud_modelarts_devserver_image_servers"
            f'{{{job}, watched="true", server_status!~"DELETED|DELETING"}}) > 0)\n'
            f"* on({KEY}) group_left() "
            f'(huaweicloud_modelarts_devserver_image_status{{{job}, status="INACTIVE"}} == 1)\n'
            f"{image_info}",
            900,
            "warning",
            "INACTIVE dev-server image {{ $labels.name }} is still used by "
            '{{ $value | printf "%.0f" }} dev server(s)',
            "ModelArts Lite Server image {{ $labels.name }} ({{ $labels.id }}, project "
            "{{ $labels.project_id }}) is INACTIVE, yet "
            '{{ $value | printf "%.0f" }} dev server(s) still run it: they cannot be rebuilt '
            "from it. Move them to an ACTIVE image, or reactivate it.",
        ),
        alert(
            "HuaweiCloudImageServerError",
            f'(huaweicloud_workspace_image_server_status{{{job}, status="ERROR"}} == 1)\n'
            f"{server_info}",
            300,
            "critical",
            "Image server {{ $labels.name }} is in ERROR",
            "Workspace image server {{ $labels.name }} ({{ $labels.id }}, project "
            "{{ $labels.project_id }}) is in ERROR.",
            keep_firing=RESTART_GAP,
        ),
        alert(
            "HuaweiCloudImageServerStuck",
            f"(time() - huaweicloud_image_exporter_status_last_change_timestamp_seconds"
            f'{{{job}, resource="image_server"}} > {t.stuck_after:g})\n'
            f"* on({KEY}) group_left(status) "
            "(huaweicloud_workspace_image_server_status"
            f'{{{job}, status=~"CREATING|BUILDING"}} == 1)\n'
            f"{server_info}",
            None,
            "warning",
            "Image server {{ $labels.name }} stuck in {{ $labels.status }}",
            "Workspace image server {{ $labels.name }} ({{ $labels.id }}, project "
            "{{ $labels.project_id }}) has been {{ $labels.status }} for "
            "{{ $value | humanizeDuration }}"
            f" (threshold {t.stuck_after:g}s).",
            # A restarted exporter leaves a gap of a scrape or two; with --storage.path it
            # then serves the same clock, and the alert must not resolve in between.
            keep_firing=RESTART_GAP,
        ),
        alert(
            "HuaweiCloudImageBuildJobFailed",
            # A (job type, error code) seen for the first time is a new series: increase()
            # needs two samples of it, so a series younger than the window counts as well.
            f"sum by (job, instance, project_id, job_type, error_code) (\n"
            f"  increase({failures}[{job_window}]) > 0\n"
            f"  or ({failures} unless {failures} offset {job_window})\n)",
            None,
            "warning",
            "Image build jobs of type {{ $labels.job_type }} failed in project "
            "{{ $labels.project_id }}",
            '{{ $value | printf "%.0f" }} sub-job(s) of type {{ $labels.job_type }} in project '
            "{{ $labels.project_id }} failed with error code {{ $labels.error_code }} in the "
            f"last {job_window}. The landing page of {{{{ $labels.instance }}}} shows each image "
            "server's last job and its error message.",
        ),
        alert(
            "HuaweiCloudImageBuildJobTooLong",
            "time() - huaweicloud_workspace_image_job_running_start_timestamp_seconds"
            f"{{{job}}}\n  > {t.build_too_long:g}",
            None,
            "warning",
            "Image build job {{ $labels.job_id }} ({{ $labels.job_type }}) has run for "
            "{{ $value | humanizeDuration }}",
            "Job {{ $labels.job_id }} of type {{ $labels.job_type }} in project "
            "{{ $labels.project_id }} has been {{ $labels.status }} for "
            "{{ $value | humanizeDuration }}"
            f" (threshold {t.build_too_long:g}s).",
            # The begin time does not move: after a restart the series is back at once.
            keep_firing=RESTART_GAP,
        ),
        alert(
            "HuaweiCloudApiThrottled",
            f"sum by (job, instance, api) (rate(huaweicloud_image_exporter_api_errors_total"
            f'{{{job}, error_code=~"APIGW?\\\\.0308"}}[{window}])) > 0',
            900,
            "warning",
            "Huawei Cloud throttles the exporter's {{ $labels.api }} calls",
            "The API gateway has answered 429 (APIGW.0308) for 15 minutes. Lower "
            "poll.concurrency, set poll.max_requests_per_second, or poll less often.",
        ),
        alert(
            "HuaweiCloudApiAuthFailing",
            f"sum by (job, instance, api) (rate(huaweicloud_image_exporter_api_requests_total"
            f'{{{job}, code=~"401|403"}}[{window}])) > 0',
            600,
            "critical",
            "Huawei Cloud rejects the exporter's credentials for {{ $labels.api }}",
            "Requests have been answered 401 or 403 for 10 minutes: the key pair is wrong, "
            "expired, locked after failed signatures, or lacks permissions.",
        ),
        alert(
            "HuaweiCloudCredentialsExpiring",
            # A key is renewed at the latest when half its life remains (7.5 minutes for
            # the shortest, 15-minute keys): 10 minutes left for 5 minutes means renewal
            # is failing.
            f"huaweicloud_image_exporter_credentials_expiry_timestamp_seconds{{{job}}}"
            " - time() < 600",
            300,
            "critical",
            "The {{ $labels.source }} key of {{ $labels.instance }} expires within 10 minutes",
            "Renewing the temporary key from {{ $labels.source }} has failed "
            "(huaweicloud_image_exporter_credentials_refresh_failures_total); once it expires "
            "every poll fails with 'credentials: ...'. The log of {{ $labels.instance }} says "
            "why.",
        ),
    ]


def rule_groups(t: Tuning) -> dict[str, Any]:
    """A Prometheus rule file."""
    return {"groups": [{"name": "huaweicloud-image-exporter", "rules": alert_rules(t)}]}


def prometheus_rule(t: Tuning, namespace: str) -> dict[str, Any]:
    """The same rules as a prometheus-operator PrometheusRule."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "huaweicloud-image-exporter",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "huaweicloud-image-exporter"},
        },
        "spec": rule_groups(t),
    }


class _Literal(str):
    """A string dumped in YAML's block style, so multi-line expressions stay readable."""


def _dump(data: dict[str, Any]) -> str:
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and "\n" in node:
            return _Literal(node)
        return node

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(
        _Literal, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", str(s), style="|")
    )
    return yaml.dump(walk(data), Dumper=Dumper, sort_keys=False, width=1000, allow_unicode=True)


HEADER = (
    "# Generated by `huaweicloud-image-exporter-rules{args}`; tune with its flags, do not edit.\n"
)


def render(
    t: Tuning, fmt: str = "prometheus", namespace: str = "monitoring", args: str = ""
) -> str:
    """The rule file text."""
    data = rule_groups(t) if fmt == "prometheus" else prometheus_rule(t, namespace)
    return HEADER.format(args=args) + _dump(data)


def main(argv: Sequence[str] | None = None) -> int:
    """``huaweicloud-image-exporter-rules``: print the rule file."""
    p = argparse.ArgumentParser(
        prog="huaweicloud-image-exporter-rules", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--stuck-after", default="1h", help="CREATING/BUILDING longer than this alerts (1h)"
    )
    p.add_argument(
        "--build-too-long",
        default="6h",
        help="an image build job WAITING or RUNNING longer than this alerts (6h)",
    )
    p.add_argument(
        "--pending-scale",
        type=float,
        default=1.0,
        help="multiply every for: period and rate window (default 1; 0.01 for demos and tests)",
    )
    p.add_argument("--runbook-url", default=DEFAULT_RUNBOOK, help="where docs/runbook.md is served")
    p.add_argument("--job", default=JOB, help=f"the scrape job name (default {JOB})")
    p.add_argument("--format", choices=("prometheus", "prometheusrule"), default="prometheus")
    p.add_argument("--namespace", default="monitoring", help="namespace of the PrometheusRule")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    tuning = Tuning(
        parse_duration(args.stuck_after), args.pending_scale, args.runbook_url, args.job,
        parse_duration(args.build_too_long),
    )  # fmt: skip
    flags = "".join(f" {a}" for a in argv)
    sys.stdout.write(render(tuning, args.format, args.namespace, flags))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
