"""MLproject files: parsing, parameter checks and command formatting, as MLflow does them.

`format_command` reproduces mlflow.projects._project_spec.EntryPoint.compute_command (a test checks
parity against MLflow itself) so a project behaves the same under Parallels as under `mlflow run`.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from parallels.errors import ParameterError, ProjectError
from parallels.spec import Scalar

PARAM_TYPES = ("string", "float", "path", "uri")
#: Parameters Parallels fills itself when an entry point declares them.
AUTO_PARAMETERS = ("input_dir", "output_dir")
_FILE_COMMANDS = {".py": "python", ".sh": "bash"}


class ParameterSpec(BaseModel):
    type: str = "string"
    default: Scalar | None = None


class EntryPointSpec(BaseModel):
    name: str
    command: str
    parameters: dict[str, ParameterSpec] = {}


class ProjectSpec(BaseModel):
    """What Parallels needs to know of an MLproject (small: travels through workflow history)."""

    name: str | None = None
    entry_points: dict[str, EntryPointSpec] = {}
    python_env: str | None = None  # path of the python_env file, relative to the project dir
    conda_env: str | None = None
    docker_image: str | None = None

    def entry_point(self, name: str) -> EntryPointSpec:
        if name in self.entry_points:
            return self.entry_points[name]
        suffix = Path(name).suffix
        if suffix in _FILE_COMMANDS:
            # MLflow runs a bare script name as an entry point with no declared parameters.
            return EntryPointSpec(
                name=name, command=f"{_FILE_COMMANDS[suffix]} {shlex.quote(name)}"
            )
        known = ", ".join(sorted(self.entry_points)) or "none"
        raise ProjectError(
            f"entry point '{name}' is not defined in the MLproject (defined: {known}); "
            "a .py or .sh file name also works"
        )


def parse_mlproject(text: str, *, files: frozenset[str] = frozenset()) -> ProjectSpec:
    """Parse MLproject text. `files` lists the project directory's top-level file names."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ProjectError(f"MLproject is not valid YAML: {e}") from e
    if not isinstance(doc, dict):
        raise ProjectError("MLproject must be a YAML mapping")
    eps: dict[str, EntryPointSpec] = {}
    raw_eps = doc.get("entry_points") or {}
    if not isinstance(raw_eps, dict):
        raise ProjectError("MLproject 'entry_points' must be a mapping")
    for name, ep in raw_eps.items():
        if not isinstance(ep, dict) or not isinstance(ep.get("command"), str):
            raise ProjectError(f"MLproject entry point '{name}' needs a 'command' string")
        params: dict[str, ParameterSpec] = {}
        for pname, p in (ep.get("parameters") or {}).items():
            params[str(pname)] = _parse_param(str(name), str(pname), p)
        eps[str(name)] = EntryPointSpec(name=str(name), command=ep["command"], parameters=params)
    docker = doc.get("docker_env")
    if docker is not None and not (isinstance(docker, dict) and docker.get("image")):
        raise ProjectError("MLproject 'docker_env' needs an 'image'")
    python_env = doc.get("python_env")
    conda_env = doc.get("conda_env")
    for key, value in (("python_env", python_env), ("conda_env", conda_env)):
        if value is not None and not isinstance(value, str):
            raise ProjectError(f"MLproject '{key}' must be a file name")
    # MLflow's defaults when nothing is declared.
    if not docker and python_env is None and conda_env is None:
        if "python_env.yaml" in files:
            python_env = "python_env.yaml"
        elif "conda.yaml" in files:
            conda_env = "conda.yaml"
    return ProjectSpec(
        name=doc.get("name"),
        entry_points=eps,
        python_env=python_env,
        conda_env=conda_env,
        docker_image=docker.get("image") if isinstance(docker, dict) else None,
    )


def _parse_param(ep: str, name: str, raw: Any) -> ParameterSpec:
    if isinstance(raw, str):
        spec = ParameterSpec(type=raw)
    elif isinstance(raw, dict):
        default = raw.get("default")
        if default is not None and not isinstance(default, str | int | float | bool):
            raise ProjectError(f"entry point '{ep}' parameter '{name}': default must be a scalar")
        spec = ParameterSpec(type=str(raw.get("type", "string")), default=default)
    elif raw is None:
        spec = ParameterSpec()
    else:
        raise ProjectError(f"entry point '{ep}' parameter '{name}' must be a type or a mapping")
    if spec.type not in PARAM_TYPES:
        raise ProjectError(
            f"entry point '{ep}' parameter '{name}' has unknown type '{spec.type}' "
            f"(one of {', '.join(PARAM_TYPES)})"
        )
    return spec


def load_project_dir(directory: Path) -> ProjectSpec:
    """Read the MLproject of a checked-out project directory (file name case-insensitive)."""
    if not directory.is_dir():
        raise ProjectError(f"project directory '{directory.name}' does not exist in the repository")
    files = frozenset(p.name for p in directory.iterdir() if p.is_file())
    mlproject = next((f for f in files if f.lower() == "mlproject"), None)
    if mlproject is None:
        return parse_mlproject("", files=files)
    spec = parse_mlproject((directory / mlproject).read_text(encoding="utf-8"), files=files)
    for env_file in (spec.python_env, spec.conda_env):
        if env_file and not (directory / env_file).is_file():
            raise ProjectError(f"MLproject names environment file '{env_file}', which is missing")
    return spec


def check_parameters(ep: EntryPointSpec, params: Mapping[str, Scalar]) -> list[str]:
    """Problems with user parameters for an entry point; [] if they fit.

    Unlike `mlflow run`, unknown names are refused when the entry point declares parameters:
    in a DAG a typo would otherwise silently pass `--threshhold 0.5` to the command.
    """
    problems: list[str] = []
    declared = ep.parameters
    if declared:
        for key in params:
            if key not in declared:
                problems.append(
                    f"parameter '{key}' is not declared by entry point '{ep.name}' "
                    f"(declared: {', '.join(sorted(declared))})"
                )
    for key, p in declared.items():
        if key in AUTO_PARAMETERS:
            continue
        if key not in params and p.default is None:
            problems.append(f"parameter '{key}' of entry point '{ep.name}' needs a value")
        if key in params and p.type == "float":
            value = params[key]
            try:
                float(value)
            except (TypeError, ValueError):
                problems.append(f"parameter '{key}' must be a number, got {value!r}")
        if key in params and p.type == "uri" and ":" not in str(params[key]):
            problems.append(f"parameter '{key}' must be a URI (scheme:...), got {params[key]!r}")
    return problems


def format_command(
    ep: EntryPointSpec, params: Mapping[str, Scalar], *, auto: Mapping[str, str] | None = None
) -> str:
    """The shell command MLflow would run, with `auto` filling input_dir/output_dir if declared."""
    values: dict[str, Scalar] = dict(params)
    for key, value in (auto or {}).items():
        if key in ep.parameters and key not in values:
            values[key] = value
    problems = check_parameters(ep, values)
    if problems:
        raise ParameterError("; ".join(problems))
    final = {k: shlex.quote(_text(values.get(k, p.default))) for k, p in ep.parameters.items()}
    extra = {k: v for k, v in values.items() if k not in ep.parameters}
    try:
        command = ep.command.format(**final)
    except (KeyError, IndexError, ValueError) as e:
        raise ParameterError(
            f"entry point '{ep.name}' command refers to an undeclared parameter: {e}"
        ) from e
    parts = [command]
    parts.extend(f"--{shlex.quote(k)} {shlex.quote(_text(v))}" for k, v in extra.items())
    return " ".join(parts)


def _text(v: Scalar | None) -> str:
    # str(True) == "True", as MLflow passes it; keep that for parity.
    return str(v)
