"""Kubernetes manifests for partitions and image builds, as plain dicts. Pure.

Names are derived from the partition key, so a retried launch finds its pod (409 means reuse).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from parallels.mlproject import EntryPointSpec
from parallels.spec import Resources, Scalar

MANAGED_BY = {"app.kubernetes.io/managed-by": "parallels"}
WORKSPACE = "/workspace"
SOURCE_DIR = f"{WORKSPACE}/src"
TERMINATION_LOG = "/dev/termination-log"
#: The runner's own failures start the termination message with one of these, so the worker
#: tells them apart from the step's exit code (which may be any number).
RUNNER_RETRYABLE = "parallels:retryable:"
RUNNER_FAILED = "parallels:failed:"


class PodJob(BaseModel):
    """What the pod's runner (`python -m parallels.pod_main`) does; travels as PARALLELS_JOB."""

    run_id: str
    experiment_id: str
    manifest_uri: str
    digest: str
    index: int
    count: int
    entry_point: EntryPointSpec
    parameters: dict[str, Scalar]


class ClusterConfig(BaseModel):
    """What a Kubernetes cluster's worker needs to know to reach it and launch pods there.

    MLflow's own `kubernetes_config.json` keys are accepted too (`kube-context`,
    `repository-uri`), so users of MLflow's Kubernetes backend can bring their file.
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
    #: kubeconfig context; none: the in-cluster service account, else the current context.
    context: str | None = Field(default=None, alias="kube-context")
    kubeconfig: str | None = None
    namespace: str = "parallels"
    #: Registry (and repository prefix) the environment images are pushed to and pulled from.
    registry: str = Field(alias="repository-uri")
    #: pip requirement that installs the runner into environment images.
    runner_requirement: str = "mlflow-parallels"
    #: MLflow as the pods reach it (may differ from the worker's view of it).
    tracking_uri: str
    git_image: str = "alpine/git:2.47.2"
    kaniko_image: str = "gcr.io/kaniko-project/executor:v1.23.2"
    service_account: str | None = None
    image_pull_secrets: list[str] = Field(default_factory=list)
    #: Secret with MLflow credentials (MLFLOW_TRACKING_USERNAME, ...), added to the pods' env.
    mlflow_secret: str | None = None
    #: Secret of type kubernetes.io/dockerconfigjson that kaniko pushes with.
    registry_secret: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    automount_token: bool = False
    #: Give up on a pod that cannot be scheduled, or whose image cannot be pulled, after this.
    unschedulable_seconds: float = Field(default=600.0, gt=0)
    image_pull_seconds: float = Field(default=180.0, gt=0)
    #: Seconds between re-reads of a pod besides the watch (missed events, lost watches).
    poll_seconds: float = Field(default=10.0, gt=0)
    #: Registry over plain HTTP (a local test or lab registry).
    insecure_registry: bool = False

    @model_validator(mode="before")
    @classmethod
    def _no_job_template(cls, data: Any) -> Any:
        # MLflow's backend users bring this key; say what replaces it instead of "extra field".
        if isinstance(data, dict) and "kube-job-template-path" in data:
            raise ValueError(
                "kube-job-template-path is not used: Parallels generates one pod per partition; "
                "set what the template held with resources on the node and service_account, "
                "node_selector, tolerations, image_pull_secrets and mlflow_secret on the cluster"
            )
        return data


class PodRequest(BaseModel):
    key: str  # partition key: deterministic name source
    workflow_id: str
    dag: str
    node: str
    index: int
    count: int
    image: str
    repo_uri: str
    commit: str
    subdirectory: str
    job: PodJob
    resources: Resources = Field(default_factory=Resources)
    timeout_seconds: float


def pod_name(key: str) -> str:
    """'p-<node>-<index>-<hash>': a DNS-1123 label, unique per partition key, readable."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    parts = key.rsplit("/", 2)
    readable = "-".join(parts[-2:]) if len(parts) == 3 else ""
    readable = re.sub(r"[^a-z0-9]+", "-", readable.lower()).strip("-")[:40].rstrip("-")
    return f"p-{readable}-{digest}" if readable else f"p-{digest}"


def label_value(text: str) -> str:
    """A valid label value (≤63, alphanumeric at both ends); long values keep a hash suffix."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    if len(clean) <= 63:
        return clean
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{clean[:54].rstrip('-_.')}-{digest}"


def labels(r: PodRequest) -> dict[str, str]:
    return {
        **MANAGED_BY,
        "parallels.io/dag": label_value(r.dag),
        "parallels.io/node": label_value(r.node),
        "parallels.io/partition": str(r.index),
        "parallels.io/workflow": label_value(r.workflow_id),
    }


def _resources(res: Resources) -> dict[str, Any]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if res.cpu:
        requests["cpu"] = res.cpu
    if res.memory:
        # Memory is a hard limit too: a pod over it is OOMKilled, and that is reported.
        requests["memory"] = limits["memory"] = res.memory
    if res.gpu:
        limits["nvidia.com/gpu"] = str(res.gpu)
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def partition_pod(r: PodRequest, c: ClusterConfig) -> dict[str, Any]:
    name = pod_name(r.key)
    workdir = f"{SOURCE_DIR}/{r.subdirectory}".rstrip("/")
    env = [
        {"name": "MLFLOW_TRACKING_URI", "value": c.tracking_uri},
        {"name": "PARALLELS_PARTITION_INDEX", "value": str(r.index)},
        {"name": "PARALLELS_PARTITION_COUNT", "value": str(r.count)},
        {"name": "PARALLELS_JOB", "value": r.job.model_dump_json()},
        {"name": "PARALLELS_WORKSPACE", "value": WORKSPACE},
        {"name": "PARALLELS_TERMINATION_LOG", "value": TERMINATION_LOG},
        {"name": "HOME", "value": "/tmp"},
    ]
    main: dict[str, Any] = {
        "name": "step",
        "image": r.image,
        "command": ["python", "-m", "parallels.pod_main"],
        "workingDir": workdir,
        "env": env,
        "resources": _resources(r.resources),
        "terminationMessagePath": TERMINATION_LOG,
        # A step killed before the runner writes a message still leaves its last lines.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": _security(),
        "volumeMounts": [
            {"name": "workspace", "mountPath": "/workspace"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    if c.mlflow_secret:
        main["envFrom"] = [{"secretRef": {"name": c.mlflow_secret}}]
    fetch = {
        "name": "fetch-source",
        "image": c.git_image,
        # Only the resolved commit is checked out: the pod runs exactly what the run recorded.
        "command": [
            "sh",
            "-c",
            'git clone --no-checkout --quiet "$REPO" "$DEST" && '
            'git -C "$DEST" -c advice.detachedHead=false checkout --quiet "$COMMIT"',
        ],
        "env": [
            {"name": "REPO", "value": r.repo_uri},
            {"name": "COMMIT", "value": r.commit},
            {"name": "DEST", "value": SOURCE_DIR},
            {"name": "HOME", "value": "/tmp"},
        ],
        "securityContext": _security(),
        "volumeMounts": [
            {"name": "workspace", "mountPath": "/workspace"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # Kubernetes' own backstop; the worker gives up a little earlier with its own message.
        "activeDeadlineSeconds": max(1, int(r.timeout_seconds)),
        "automountServiceAccountToken": c.automount_token,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000},
        "initContainers": [fetch],
        "containers": [main],
        "volumes": [{"name": "workspace", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
    }
    if c.service_account:
        spec["serviceAccountName"] = c.service_account
    if c.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in c.image_pull_secrets]
    if c.node_selector:
        spec["nodeSelector"] = dict(c.node_selector)
    tolerations = list(c.tolerations)
    if r.resources.gpu:
        tolerations.append({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})
    if tolerations:
        spec["tolerations"] = tolerations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": c.namespace,
            "labels": labels(r),
            "annotations": {"parallels.io/key": r.key[:1000]},
        },
        "spec": spec,
    }


def build_name(image: str) -> str:
    """'build-<tag>': the build Job and its context ConfigMap, one per image tag."""
    return f"build-{image.rsplit(':', 1)[-1][:40]}"


def build_manifests(
    image: str, files: dict[str, str], c: ClusterConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ConfigMap holding the build context (`files`: path -> text, Dockerfile included) and a
    kaniko Job that builds it and pushes `image`. Kaniko runs as root: it unpacks image layers."""
    name = build_name(image)
    tag = image.rsplit(":", 1)[-1]
    image_labels = {**MANAGED_BY, "parallels.io/image": label_value(tag)}
    # ConfigMap keys cannot hold '/', so files get numbered keys and are mapped back to paths.
    paths = sorted(files)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": c.namespace, "labels": image_labels},
        "data": {f"f{i}": files[p] for i, p in enumerate(paths)},
    }
    volumes: list[dict[str, Any]] = [
        {
            "name": "context",
            "configMap": {
                "name": name,
                "items": [{"key": f"f{i}", "path": p} for i, p in enumerate(paths)],
            },
        },
    ]
    mounts: list[dict[str, Any]] = [{"name": "context", "mountPath": "/context"}]
    if c.registry_secret:
        volumes.append(
            {
                "name": "registry",
                "secret": {
                    "secretName": c.registry_secret,
                    "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                },
            }
        )
        mounts.append({"name": "registry", "mountPath": "/kaniko/.docker"})
    args = [
        "--context=dir:///context",
        "--dockerfile=/context/Dockerfile",
        f"--destination={image}",
        "--cache=true",
    ]
    if c.insecure_registry:
        args.append("--insecure")
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "containers": [
            {"name": "kaniko", "image": c.kaniko_image, "args": args, "volumeMounts": mounts}
        ],
        "volumes": volumes,
    }
    if c.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in c.image_pull_secrets]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": c.namespace, "labels": image_labels},
        "spec": {
            "backoffLimit": 1,
            # The image is the result; the Job is kept a day for its log, then removed.
            "ttlSecondsAfterFinished": 86_400,
            "template": {"metadata": {"labels": image_labels}, "spec": pod_spec},
        },
    }
    return configmap, job
