"""A single MLflow project run expressed as a one-node DAG, so it gets everything a DAG node gets
(git resolution, environments, clusters, tracking, retries) without a second code path."""

from __future__ import annotations

import re
from typing import Any

from parallels.spec import DEFAULT_CLUSTER, EnvManager, ProjectRef, Resources, Scalar


def _slug(text: str, *, upper: bool) -> str:
    allowed = r"[^A-Za-z0-9._-]+" if upper else r"[^a-z0-9_-]+"
    s = re.sub(allowed, "-", text if upper else text.lower()).strip("-._")
    return s[:60].strip("-._")


def dag_name(project: ProjectRef) -> str:
    """'https://host/org/repo.git' + 'steps/train' -> 'repo-train' (a valid DAG name)."""
    base = project.uri.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    leaf = project.subdirectory.rsplit("/", 1)[-1] if project.subdirectory else ""
    name = _slug("-".join(p for p in (base, leaf) if p), upper=True)
    return name or "project"


def node_id(entry_point: str) -> str:
    return _slug(entry_point, upper=False) or "main"


def single_project_spec(
    project: ProjectRef,
    *,
    entry_point: str = "main",
    parameters: dict[str, Scalar] | None = None,
    experiment: str | None = None,
    cluster: str = DEFAULT_CLUSTER,
    resources: Resources | None = None,
    timeout: str = "1h",
    retries: int = 0,
    env_manager: EnvManager = EnvManager.AUTO,
) -> dict[str, Any]:
    """The raw DAG spec (validated later, like any other) of one project entry point."""
    node: dict[str, Any] = {
        "id": node_id(entry_point),
        "project": project.model_dump(exclude_defaults=True),
        "entry_point": entry_point,
        "parameters": dict(parameters or {}),
        "cluster": cluster,
        "timeout": timeout,
        "retries": retries,
        "env_manager": env_manager.value,
    }
    if resources is not None:
        node["resources"] = resources.model_dump(exclude_defaults=True)
    spec: dict[str, Any] = {"name": dag_name(project), "nodes": [node]}
    if experiment:
        spec["experiment"] = experiment
    return spec
