"""The Helm chart renders (Helm's own engine, no cluster), every manifest validates against the
Kubernetes OpenAPI schemas, the settings it passes exist, and its RBAC is no wider than needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from helm_python.chart import Chart, lint

from parallels.pods import ClusterConfig
from parallels.settings import Settings

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "parallels"
MULTI = CHART.parent / "values-multicluster.yaml"
KUBE_VERSION = "1.30.0"

# What a Kubernetes cluster's worker calls (activities/kube.py), resource by resource.
NEEDED = {
    ("", "pods"): {"create", "get", "list", "watch", "delete"},
    ("", "pods/log"): {"get"},
    ("", "configmaps"): {"create"},
    ("batch", "jobs"): {"create", "get", "delete"},
    ("", "secrets"): {"get"},
}


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rendered = Chart.load(CHART).render(values, name="parallels", namespace="parallels")
    return [d for text in rendered.values() for d in yaml.safe_load_all(text) if d]


def multi() -> dict[str, Any]:
    return yaml.safe_load(MULTI.read_text())


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("values", [None, "multi"], ids=["defaults", "multi-cluster"])
def test_every_manifest_validates_against_the_kubernetes_schemas(values):
    docs = render(multi() if values else None)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("values", [None, "multi"], ids=["defaults", "multi-cluster"])
def test_helm_lint_finds_no_errors(values):
    report = lint(CHART, multi() if values else None, strict=True, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == [] and not [m for m in report["messages"] if m["severity"] >= 2]


def test_default_values_deploy_api_and_control_worker_only():
    docs = render()
    names = sorted(d["metadata"]["name"] for d in by_kind(docs, "Deployment"))
    assert names == ["parallels-api", "parallels-worker-control"]
    assert by_kind(docs, "Role") == [] and by_kind(docs, "ClusterRole") == []
    [pdb] = by_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1


def test_one_worker_per_cluster_with_a_config_the_worker_accepts():
    docs = render(multi())
    workers = {
        d["metadata"]["labels"]["parallels.io/worker"]: d
        for d in by_kind(docs, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    }
    assert set(workers) == {"control", "cpu", "gpu-onprem"}
    for name in ("cpu", "gpu-onprem"):
        spec = workers[name]["spec"]["template"]["spec"]
        assert spec["containers"][0]["args"] == ["worker", "--cluster", name]
        [config] = json.loads(env_of(workers[name])["PARALLELS_KUBE_CLUSTERS"])
        cluster = ClusterConfig.model_validate(config)  # what `parallels worker` will parse
        assert cluster.name == name
    gpu = workers["gpu-onprem"]
    [cfg] = json.loads(env_of(gpu)["PARALLELS_KUBE_CLUSTERS"])
    assert cfg["kubeconfig"] == "/etc/parallels/kube/config"
    assert ClusterConfig.model_validate(cfg).context == "onprem"
    # Only the in-cluster worker holds a service account token.
    tokens = {
        n: w["spec"]["template"]["spec"]["automountServiceAccountToken"] for n, w in workers.items()
    }
    assert tokens == {"control": False, "cpu": True, "gpu-onprem": False}
    api = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "parallels-api")
    assert api["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_rendered_settings_exist_and_parse():
    """A misspelt PARALLELS_* variable would be ignored silently: every one must be a setting."""
    fields = {f"PARALLELS_{n.upper()}" for n in Settings.model_fields}
    extra = {"PARALLELS_HEALTH_URL"}  # read by the image's HEALTHCHECK, not by Settings
    deployments = by_kind(render(multi()), "Deployment")
    for doc in deployments:
        env = env_of(doc)
        unknown = {k for k in env if k.startswith("PARALLELS_")} - fields - extra
        assert not unknown, (doc["metadata"]["name"], unknown)
    control = next(d for d in deployments if d["metadata"]["name"].endswith("control"))
    s = Settings.model_validate(
        {
            k.removeprefix("PARALLELS_").lower(): v
            for k, v in env_of(control).items()
            if isinstance(v, str) and k.startswith("PARALLELS_") and k not in extra
        }
    )
    assert s.cluster_names == ["local", "cpu", "gpu-onprem"]
    assert s.temporal_tls is True and s.codec_keys_file == Path("/etc/parallels/codec/keys")
    assert env_of(control)["PARALLELS_TEMPORAL_API_KEY"] == {
        "secretKeyRef": {"name": "temporal-cloud", "key": "api-key"}
    }


def test_rbac_is_namespaced_and_no_wider_than_the_worker_needs():
    docs = render(multi())
    assert by_kind(docs, "ClusterRole") == [] and by_kind(docs, "ClusterRoleBinding") == []
    [role] = by_kind(docs, "Role")  # the remote cluster's RBAC is its admins' business
    assert role["metadata"]["namespace"] == "parallels-runs"
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert "*" not in rule["verbs"] and resource != "*"
                granted.setdefault((group, resource), set()).update(rule["verbs"])
                if resource == "secrets":
                    assert rule["resourceNames"] == ["registry-push"]
    assert granted == NEEDED
    [binding] = by_kind(docs, "RoleBinding")
    assert binding["metadata"]["namespace"] == "parallels-runs"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "parallels", "namespace": "parallels"}
    ]


def test_containers_run_non_root_read_only_with_probes_and_limits():
    for doc in by_kind(render(multi()), "Deployment"):
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        [c] = pod["containers"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert c["readinessProbe"] and c["resources"]["limits"]["memory"]
