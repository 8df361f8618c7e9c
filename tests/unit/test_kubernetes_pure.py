"""Kubernetes manifests, Dockerfile generation, image tags, failure classification: pure."""

from __future__ import annotations

import base64
import json

import pytest

from activities.registry import credentials, split_ref
from parallels import images
from parallels.errors import EnvironmentError_
from parallels.mlproject import EntryPointSpec, ProjectSpec
from parallels.pods import (
    ClusterConfig,
    PodJob,
    PodRequest,
    build_manifests,
    label_value,
    partition_pod,
    pod_name,
)
from parallels.podstatus import classify
from parallels.pyenv import PythonEnv
from parallels.spec import Resources

CLUSTER = ClusterConfig(
    name="gpu",
    registry="registry.example.com/ml",
    tracking_uri="http://mlflow:5000",
    image_pull_secrets=["pull"],
    mlflow_secret="mlflow-creds",
    registry_secret="push",
)


def request(**kw: object) -> PodRequest:
    base: dict[str, object] = {
        "key": "dag-1@run/infer/3",
        "workflow_id": "dag-1",
        "dag": "batch inference",
        "node": "infer",
        "index": 3,
        "count": 10,
        "image": "registry.example.com/ml/parallels-env:abc",
        "repo_uri": "https://git.example.com/ml.git",
        "commit": "0" * 40,
        "subdirectory": "models/resnet",
        "job": PodJob(
            run_id="r1",
            experiment_id="1",
            manifest_uri="runs:/n/manifest.json",
            digest="d",
            index=3,
            count=10,
            entry_point=EntryPointSpec(name="main", command="python infer.py"),
            parameters={"batch": 8},
        ),
        "resources": Resources(cpu="2", memory="4Gi", gpu=1),
        "timeout_seconds": 3600,
    }
    return PodRequest.model_validate({**base, **kw})


def test_pod_names_are_deterministic_readable_dns_labels():
    name = pod_name("dag-1@run/infer/3")
    assert name == pod_name("dag-1@run/infer/3")
    assert name.startswith("p-infer-3-") and len(name) <= 63
    assert pod_name("dag-1@run/infer/4") != name
    long = pod_name("w@r/" + "N" * 300 + "/12")
    assert len(long) <= 63 and long.replace("-", "").isalnum() and long == long.lower()


def test_label_values_are_valid_and_keep_long_values_distinct():
    assert label_value("batch inference") == "batch-inference"
    a, b = label_value("x" * 100 + "a"), label_value("x" * 100 + "b")
    assert len(a) <= 63 and a != b


def test_partition_pod_manifest():
    pod = partition_pod(request(), CLUSTER)
    spec = pod["spec"]
    assert pod["metadata"]["name"] == pod_name("dag-1@run/infer/3")
    assert pod["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "parallels",
        "parallels.io/dag": "batch-inference",
        "parallels.io/node": "infer",
        "parallels.io/partition": "3",
        "parallels.io/workflow": "dag-1",
    }
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    assert spec["imagePullSecrets"] == [{"name": "pull"}]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["activeDeadlineSeconds"] == 3600
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    fetch = spec["initContainers"][0]
    fetch_env = {e["name"]: e["value"] for e in fetch["env"]}
    assert fetch_env["REPO"] == "https://git.example.com/ml.git"
    assert fetch_env["COMMIT"] == "0" * 40
    step = spec["containers"][0]
    assert step["image"] == "registry.example.com/ml/parallels-env:abc"
    assert step["command"] == ["python", "-m", "parallels.pod_main"]
    assert step["workingDir"] == "/workspace/src/models/resnet"
    assert step["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"memory": "4Gi", "nvidia.com/gpu": "1"},
    }
    assert step["securityContext"]["allowPrivilegeEscalation"] is False
    assert step["envFrom"] == [{"secretRef": {"name": "mlflow-creds"}}]
    env = {e["name"]: e["value"] for e in step["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    job = PodJob.model_validate_json(env["PARALLELS_JOB"])
    assert job.run_id == "r1" and job.parameters == {"batch": 8}


def test_a_cpu_only_pod_asks_for_no_gpu_and_no_toleration():
    pod = partition_pod(request(resources=Resources()), CLUSTER)
    assert "tolerations" not in pod["spec"]
    assert pod["spec"]["containers"][0]["resources"] == {}


def test_cluster_config_accepts_mlflow_kubernetes_backend_keys():
    c = ClusterConfig.model_validate(
        {
            "name": "eks",
            "kube-context": "prod",
            "repository-uri": "123.dkr.example.com/ml",
            "tracking_uri": "http://m",
        }
    )
    assert c.context == "prod" and c.registry == "123.dkr.example.com/ml"
    with pytest.raises(ValueError, match="kube-job-tmpl"):
        ClusterConfig.model_validate(
            {"name": "x", "registry": "r.example.com", "tracking_uri": "t", "kube-job-tmpl": 1}
        )
    with pytest.raises(ValueError, match=r"generates one pod per partition.*node_selector"):
        ClusterConfig.model_validate(
            {
                "name": "x",
                "repository-uri": "r.example.com",
                "tracking_uri": "t",
                "kube-job-template-path": "job.yaml",
            }
        )


def recipe(**kw: object) -> images.ImageRecipe:
    return images.recipe(
        ProjectSpec(python_env="python_env.yaml"),
        python_env_text="python: 3.10\ndependencies: [numpy==2.0, -r requirements.txt]\n",
        requirement_files={"requirements.txt": "pillow==10.4\n"},
        runner="mlflow-parallels==0.1.0",
        python_env=PythonEnv(python="3.10", dependencies=["numpy==2.0", "-r requirements.txt"]),
        **kw,  # type: ignore[arg-type]
    )


def test_dockerfile_installs_environment_and_runner_but_not_the_source():
    r = recipe()
    text = images.dockerfile(r)
    assert text.startswith("FROM python:3.10-slim\n")
    assert "COPY requirements.txt /parallels/env/requirements.txt" in text
    assert "pip install numpy==2.0 -r requirements.txt" in text
    assert "pip install mlflow-parallels==0.1.0" in text
    assert "USER 1000" in text
    assert images.context_files(r) == {"Dockerfile": text, "requirements.txt": "pillow==10.4\n"}


def test_image_tag_is_a_content_hash_of_what_goes_in():
    a = recipe()
    assert a.tag() == recipe().tag()
    changed = a.model_copy(update={"requirement_files": {"requirements.txt": "pillow==11\n"}})
    assert changed.tag() != a.tag()
    assert a.model_copy(update={"runner": "mlflow-parallels==0.2"}).tag() != a.tag()
    ref = images.image_ref("registry.example.com/ml/", a)
    assert ref == f"registry.example.com/ml/parallels-env:{a.tag()}"


def test_docker_env_projects_use_their_image_and_conda_is_refused():
    r = images.recipe(
        ProjectSpec(docker_image="pytorch/pytorch:2.4"),
        python_env_text=None,
        requirement_files={},
        runner="mlflow-parallels",
    )
    assert images.dockerfile(r).startswith("FROM pytorch/pytorch:2.4\n")
    with pytest.raises(EnvironmentError_, match="conda"):
        images.recipe(
            ProjectSpec(conda_env="conda.yaml"),
            python_env_text=None,
            requirement_files={},
            runner="x",
        )


def test_requirement_files_outside_the_project_are_refused():
    bad = recipe().model_copy(update={"requirement_files": {"../secrets.txt": "x"}})
    with pytest.raises(EnvironmentError_, match="plain path"):
        images.dockerfile(bad)


def test_build_manifests_map_context_files_and_push_secret():
    configmap, job = build_manifests(
        "registry.example.com/ml/parallels-env:abc",
        {"Dockerfile": "FROM x\n", "reqs/a.txt": "numpy\n"},
        CLUSTER,
    )
    assert configmap["metadata"]["name"] == job["metadata"]["name"] == "build-abc"
    assert configmap["data"] == {"f0": "FROM x\n", "f1": "numpy\n"}
    pod = job["spec"]["template"]["spec"]
    items = pod["volumes"][0]["configMap"]["items"]
    assert items == [{"key": "f0", "path": "Dockerfile"}, {"key": "f1", "path": "reqs/a.txt"}]
    assert pod["volumes"][1]["secret"]["secretName"] == "push"
    args = pod["containers"][0]["args"]
    assert "--destination=registry.example.com/ml/parallels-env:abc" in args


def status(**s: object) -> dict[str, object]:
    return {"status": s}


def terminated(code: int, reason: str = "Error", message: str = "") -> dict[str, object]:
    return {"state": {"terminated": {"exitCode": code, "reason": reason, "message": message}}}


@pytest.mark.parametrize(
    ("pod", "kw", "expected"),
    [
        (status(phase="Pending"), {}, ("pending", "", False)),
        (status(phase="Running"), {}, ("running", "", False)),
        (
            status(phase="Succeeded", containerStatuses=[terminated(0, "Completed")]),
            {},
            ("succeeded", "", False),
        ),
        (
            status(phase="Failed", containerStatuses=[terminated(3, message="boom")]),
            {},
            ("failed", "Error", False),
        ),
        (
            status(phase="Failed", containerStatuses=[terminated(137, "OOMKilled")]),
            {},
            ("failed", "OOMKilled", False),
        ),
        (status(phase="Failed", reason="Evicted"), {}, ("failed", "Evicted", True)),
        (
            status(phase="Failed", reason="DeadlineExceeded"),
            {},
            ("failed", "DeadlineExceeded", False),
        ),
        (
            status(
                phase="Pending",
                containerStatuses=[{"state": {"waiting": {"reason": "ImagePullBackOff"}}}],
            ),
            {"pending_for": 5, "image_pull_after": 60},
            ("pending", "ImagePullBackOff", False),
        ),
        (
            status(
                phase="Pending",
                containerStatuses=[{"state": {"waiting": {"reason": "ImagePullBackOff"}}}],
            ),
            {"pending_for": 61, "image_pull_after": 60},
            ("failed", "ImagePullBackOff", False),
        ),
        (
            status(
                phase="Pending",
                containerStatuses=[{"state": {"waiting": {"reason": "InvalidImageName"}}}],
            ),
            {},
            ("failed", "InvalidImageName", False),
        ),
        (
            status(phase="Pending", initContainerStatuses=[terminated(128, message="no repo")]),
            {},
            ("failed", "SourceFetchFailed", False),
        ),
    ],
    ids=[
        "pending",
        "running",
        "succeeded",
        "exit",
        "oom",
        "evicted",
        "deadline",
        "pull-grace",
        "pull-failed",
        "bad-image",
        "source",
    ],
)
def test_classify(pod, kw, expected):
    state = classify(pod, **kw)
    assert (state.phase, state.reason, state.retryable) == expected


def test_unschedulable_fails_only_after_the_limit_and_names_the_resource():
    cond = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
    }
    pod = status(phase="Pending", conditions=[cond])
    assert classify(pod, pending_for=10, unschedulable_after=60).phase == "pending"
    state = classify(pod, pending_for=61, unschedulable_after=60)
    assert state.phase == "failed" and "nvidia.com/gpu" in state.message


def test_image_refs_and_registry_credentials():
    assert split_ref("registry.example.com/ml/parallels-env:abc") == (
        "registry.example.com",
        "ml/parallels-env",
        "abc",
    )
    assert split_ref("127.0.0.1:5000/ml/env:t")[0] == "127.0.0.1:5000"
    with pytest.raises(EnvironmentError_, match="registry host"):
        split_ref("ml/parallels-env:abc")
    config = {
        "auths": {
            "https://registry.example.com": {"auth": base64.b64encode(b"bot:s3cret").decode()},
            "other.example.com": {"username": "u", "password": "p"},
        }
    }
    secret = {"data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}}
    assert credentials(secret, "registry.example.com") == ("bot", "s3cret")
    assert credentials(secret, "other.example.com") == ("u", "p")
    assert credentials(secret, "third.example.com") is None
    assert credentials(None, "registry.example.com") is None


def test_only_failures_to_start_are_marked_for_the_user_to_fix():
    pull = status(
        phase="Pending", containerStatuses=[{"state": {"waiting": {"reason": "ErrImagePull"}}}]
    )
    assert classify(pull, pending_for=200, image_pull_after=60).setup
    source = status(phase="Pending", initContainerStatuses=[terminated(128)])
    assert classify(source).setup
    oom = status(phase="Failed", containerStatuses=[terminated(137, "OOMKilled")])
    evicted = status(phase="Failed", reason="Evicted")
    assert not classify(oom).setup and not classify(evicted).setup
