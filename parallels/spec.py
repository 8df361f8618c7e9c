"""The DAG spec: pydantic models shared by the API, the workflows, the activities and the UI.

Pure: no I/O beyond parsing a string, importable inside the Temporal workflow sandbox.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Node ids end up in MLflow run names, Temporal child workflow ids and Kubernetes labels.
ID_PATTERN = r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$"
NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$"

Scalar = str | int | float | bool
DEFAULT_CLUSTER = "local"


class _Strict(BaseModel):
    # Numbers and flags are strict (no `retries: false`, no `parallelism: "4"`): a spec means
    # what it says, and matches its JSON Schema.
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartitionMode(StrEnum):
    BROADCAST = "broadcast"
    BY_FILE = "by_file"
    BY_DIRECTORY = "by_directory"


class EnvManager(StrEnum):
    AUTO = "auto"  # virtualenv when the project declares python_env, else the worker's interpreter
    LOCAL = "local"
    VIRTUALENV = "virtualenv"


class ProjectRef(_Strict):
    uri: Annotated[str, Field(min_length=1, max_length=2048)]
    version: Annotated[str | None, Field(max_length=255)] = None
    subdirectory: Annotated[str, Field(max_length=1024)] = ""

    @field_validator("subdirectory")
    @classmethod
    def _relative(cls, v: str) -> str:
        parts = [p for p in v.replace("\\", "/").split("/") if p not in ("", ".")]
        if v.startswith("/") or ".." in parts:
            raise ValueError("must be a relative path inside the repository")
        return "/".join(parts)


class InputSource(_Strict):
    node: str | None = None
    uri: Annotated[str | None, Field(max_length=2048)] = None

    @model_validator(mode="after")
    def _exactly_one(self) -> InputSource:
        if (self.node is None) == (self.uri is None):
            raise ValueError("give exactly one of 'node' (an upstream node id) or 'uri'")
        return self


class NodeInput(_Strict):
    name: Annotated[str, Field(pattern=ID_PATTERN)]
    source: InputSource
    partition: PartitionMode = PartitionMode.BROADCAST


class Resources(_Strict):
    cpu: str | None = None
    memory: str | None = None
    gpu: Annotated[int, Field(ge=0, le=64, strict=True)] = 0


class NodeSpec(_Strict):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    project: ProjectRef
    entry_point: Annotated[str, Field(min_length=1, max_length=255)] = "main"
    parameters: dict[str, Scalar] = Field(default_factory=dict)
    inputs: list[NodeInput] = Field(default_factory=list)
    parallelism: Annotated[int, Field(ge=1, strict=True)] = 1
    resources: Resources = Field(default_factory=Resources)
    cluster: Annotated[str, Field(pattern=ID_PATTERN)] = DEFAULT_CLUSTER
    retries: Annotated[int, Field(ge=0, le=20, strict=True)] = 0
    timeout: str = "1h"
    env_manager: EnvManager = EnvManager.AUTO
    depends_on: list[str] = Field(default_factory=list)

    @field_validator("timeout")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)

    def partitioned_input(self) -> NodeInput | None:
        return next((i for i in self.inputs if i.partition != PartitionMode.BROADCAST), None)

    def upstream(self) -> list[str]:
        """Every node this one waits for: data edges first, then pure ordering edges."""
        seen: dict[str, None] = {}
        for inp in self.inputs:
            if inp.source.node is not None:
                seen[inp.source.node] = None
        for dep in self.depends_on:
            seen[dep] = None
        return list(seen)


class DagSpec(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: Annotated[str, Field(max_length=10_000)] = ""
    experiment: Annotated[str | None, Field(min_length=1, max_length=500)] = None
    parameters: dict[str, Scalar] = Field(default_factory=dict)
    fail_fast: Annotated[bool, Field(strict=True)] = True
    nodes: Annotated[list[NodeSpec], Field(min_length=1, max_length=500)]

    @property
    def experiment_name(self) -> str:
        return self.experiment or self.name

    def node(self, node_id: str) -> NodeSpec:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)


_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str | int | float) -> float:
    """'90s', '30m', '1h30m', '2d' or a number of seconds -> seconds (> 0)."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        t = text.strip()
        if re.fullmatch(r"\d+(\.\d+)?", t):
            seconds = float(t)
        else:
            m = _DURATION.match(t)
            if not t or m is None:
                raise ValueError(f"invalid duration {text!r}: use e.g. '90s', '30m', '1h30m', '2d'")
            d, h, mi, s = m.groups()
            seconds = int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0.0)
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    return seconds


RunStatus = Literal["pending", "running", "succeeded", "failed", "cancelled", "skipped"]


def spec_digest(raw: Mapping[str, Any]) -> str:
    """Content hash of a spec document, independent of key order and whitespace."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
