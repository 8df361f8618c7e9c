"""Environment images for Kubernetes clusters: a Dockerfile generated from the project's
environment, tagged by the content hash of everything that goes into it. Pure.

Project source is never copied in: an init container fetches it at the resolved commit, so a code
change does not rebuild the image. The runner (this package, pinned) is installed into every
image, because it is the pod's command: fetch inputs, run the entry point, upload outputs.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping

from pydantic import BaseModel

from parallels.errors import EnvironmentError_
from parallels.mlproject import ProjectSpec
from parallels.pyenv import PythonEnv

DEFAULT_PYTHON = "3.11"
#: Bumped when the generated Dockerfile changes shape, so old tags are not reused for it.
RECIPE_VERSION = "1"


class ImageRecipe(BaseModel):
    """Everything that decides the image's content."""

    #: A project's `docker_env` image is used as it is (plus the runner), like `mlflow run` does.
    base_image: str
    python_env: PythonEnv | None = None
    #: Files the python_env names with `-r file`, by path relative to the project.
    requirement_files: dict[str, str] = {}
    #: How the runner gets in, e.g. "mlflow-parallels==0.1.0" (pip requirement).
    runner: str

    def tag(self) -> str:
        doc = json.dumps(
            {"v": RECIPE_VERSION, **self.model_dump(mode="json")},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(doc.encode()).hexdigest()[:24]


def recipe(
    project: ProjectSpec,
    *,
    python_env_text: str | None,
    requirement_files: Mapping[str, str],
    runner: str,
    python_env: PythonEnv | None = None,
) -> ImageRecipe:
    """The recipe for a project, or a clear refusal (conda is not supported yet)."""
    if project.docker_image:
        return ImageRecipe(base_image=project.docker_image, runner=runner)
    if project.conda_env:
        raise EnvironmentError_(
            "conda environments are not supported on Kubernetes clusters yet: add a "
            "python_env.yaml to the project, or a docker_env image"
        )
    version = (python_env.python if python_env else None) or DEFAULT_PYTHON
    if not re.fullmatch(r"\d+(\.\d+){0,2}", version):
        raise EnvironmentError_(f"python version {version!r} in python_env is not like 3.11")
    return ImageRecipe(
        base_image=f"python:{version}-slim",
        python_env=python_env,
        requirement_files=dict(requirement_files),
        runner=runner,
    )


def image_ref(registry: str, recipe: ImageRecipe) -> str:
    """`<registry>/parallels-env:<content hash>`."""
    return f"{registry.rstrip('/')}/parallels-env:{recipe.tag()}"


def dockerfile(r: ImageRecipe) -> str:
    """A Dockerfile whose build context holds only the requirement files."""
    lines = [
        f"FROM {r.base_image}",
        "ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1",
    ]
    for name in sorted(r.requirement_files):
        lines.append(f"COPY {_quote_path(name)} /parallels/env/{_quote_path(name)}")
    env = r.python_env
    if env and env.build_dependencies:
        lines.append("RUN pip install " + " ".join(shlex.quote(d) for d in env.build_dependencies))
    if env and env.dependencies:
        deps = [_requirement(d) for d in env.dependencies]
        lines.append("RUN cd /parallels/env && pip install " + " ".join(deps))
    lines += [
        f"RUN pip install {shlex.quote(r.runner)}",
        # Pods run as this user (non-root); the project source is mounted at /workspace.
        "RUN useradd --uid 1000 --create-home parallels || adduser -D -u 1000 parallels",
        "USER 1000",
        "WORKDIR /workspace",
    ]
    return "\n".join(lines) + "\n"


def context_files(r: ImageRecipe) -> dict[str, str]:
    """The build context: the Dockerfile and the requirement files it copies."""
    return {"Dockerfile": dockerfile(r), **r.requirement_files}


def _requirement(dep: str) -> str:
    m = re.match(r"^(-r|--requirement)[\s=]+(\S+)$", dep.strip())
    if m:
        return f"-r {_quote_path(m.group(2))}"
    return shlex.quote(dep.strip())


def _quote_path(path: str) -> str:
    if path.startswith("/") or ".." in path.split("/") or not re.fullmatch(r"[\w./-]+", path):
        raise EnvironmentError_(f"requirement file {path!r} must be a plain path in the project")
    return path
