"""python_env.yaml handling and environment identity. Pure (hashing given file contents)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from parallels.errors import EnvironmentError_, ProjectError
from parallels.mlproject import ProjectSpec
from parallels.spec import EnvManager


class PythonEnv(BaseModel):
    python: str | None = None
    build_dependencies: list[str] = []
    dependencies: list[str] = []

    def requirement_files(self) -> list[str]:
        """Files named by `-r file` / `--requirement file` lines, relative to the project."""
        out: list[str] = []
        for dep in self.dependencies:
            m = re.match(r"^(?:-r|--requirement)[\s=]+(\S+)$", dep.strip())
            if m:
                out.append(m.group(1))
        return out


def parse_python_env(text: str) -> PythonEnv:
    try:
        doc = yaml.safe_load(text) or {}
        if not isinstance(doc, dict):
            raise ProjectError("python_env file must be a YAML mapping")
        if "python" in doc:
            doc["python"] = str(doc["python"])
        return PythonEnv.model_validate(doc)
    except (yaml.YAMLError, ValidationError) as e:
        raise ProjectError(f"invalid python_env file: {e}") from e


def read_python_env(project_dir: Path, env_file: str) -> tuple[str, PythonEnv, dict[str, bytes]]:
    """A project's python_env file (text and parsed) and the requirement files it names, which
    must be files inside the project."""
    text = (project_dir / env_file).read_text(encoding="utf-8")
    spec = parse_python_env(text)
    files: dict[str, bytes] = {}
    for name in spec.requirement_files():
        req = (project_dir / name).resolve()
        if project_dir.resolve() not in req.parents or not req.is_file():
            raise ProjectError(f"python_env names requirements file '{name}', which is missing")
        files[name] = req.read_bytes()
    return text, spec, files


def choose_manager(project: ProjectSpec, requested: EnvManager) -> EnvManager:
    """Which environment the local cluster uses for a project, or a clear refusal."""
    if requested == EnvManager.LOCAL:
        return EnvManager.LOCAL
    if project.docker_image:
        raise EnvironmentError_(
            f"the project declares docker_env image '{project.docker_image}': run it on a "
            "Kubernetes cluster, or set env_manager: local to use the worker's interpreter"
        )
    if project.conda_env:
        raise EnvironmentError_(
            "conda environments are not supported on the local cluster: add a python_env.yaml, "
            "or set env_manager: local to use the worker's interpreter"
        )
    if requested == EnvManager.AUTO:
        return EnvManager.VIRTUALENV if project.python_env else EnvManager.LOCAL
    return EnvManager.VIRTUALENV


def env_hash(python_env_text: str, files: Mapping[str, bytes], python: str) -> str:
    """Content hash of everything that goes into a virtualenv."""
    h = hashlib.sha256()
    h.update(b"python\0" + python.encode() + b"\0")
    h.update(b"python_env\0" + python_env_text.encode() + b"\0")
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name] + b"\0")
    return h.hexdigest()[:24]


def version_matches(requested: str | None, actual: tuple[int, int, int]) -> bool:
    """'3.11' matches 3.11.x; '3.11.7' matches exactly; None matches anything."""
    if not requested:
        return True
    parts = requested.strip().split(".")
    try:
        want = [int(p) for p in parts]
    except ValueError:
        return False
    return list(actual[: len(want)]) == want
