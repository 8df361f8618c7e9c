"""Request bodies and JSON answers of the API; the OpenAPI document is generated from these."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.store import Template
from parallels.spec import DEFAULT_CLUSTER, ID_PATTERN, EnvManager, ProjectRef, Resources, Scalar

Parameters = Annotated[dict[str, Scalar], Field(default_factory=dict, max_length=1000)]


#: Taken as a plain document (so every problem is reported with its path by load_spec), and
#: documented as the DagSpec schema.
def _dag_spec_ref(schema: dict[str, Any]) -> None:
    schema.clear()
    schema["x-schema"] = "DagSpec"  # api.openapi turns this into a $ref


SpecDocument = Annotated[dict[str, Any], Field(json_schema_extra=_dag_spec_ref)]


class StrictBody(BaseModel):
    # Strict and parsed as JSON: `"version": true` is refused, not read as 1; enums still
    # accept their string values.
    model_config = ConfigDict(extra="forbid", strict=True)


class Error(BaseModel):
    error: str = Field(description="machine-readable code, e.g. not_found, invalid_spec")
    message: str
    problems: list[dict[str, str]] | None = Field(
        default=None, description="for 422: every problem with its path"
    )


class TemplateBody(StrictBody):
    spec: SpecDocument = Field(description="a DAG spec (see docs/dag-spec.md)")


class Validated(BaseModel):
    valid: bool
    name: str
    nodes: int


class TemplatePage(BaseModel):
    items: list[Template]
    total: int
    offset: int


class TemplateVersions(BaseModel):
    items: list[Template]


class RunBody(StrictBody):
    template: str | None = Field(default=None, description="a stored template's name")
    version: int | None = Field(default=None, ge=1, description="default: the latest")
    spec: SpecDocument | None = Field(default=None, description="an inline DAG spec instead")
    parameters: Parameters
    run_name: str | None = Field(default=None, max_length=250)
    experiment: str | None = Field(default=None, min_length=1, max_length=500)


class ProjectRunBody(StrictBody):
    """One MLflow project entry point, run like a one-node DAG (what `mlflow run` submits)."""

    uri: str = Field(min_length=1, max_length=2048, description="git URI or path of the project")
    version: str | None = Field(default=None, max_length=255, description="branch, tag or commit")
    subdirectory: str = Field(default="", max_length=1024)
    entry_point: str = Field(default="main", min_length=1, max_length=255)
    parameters: Parameters
    experiment: str | None = Field(default=None, min_length=1, max_length=500)
    run_name: str | None = Field(default=None, max_length=250)
    cluster: str = Field(default=DEFAULT_CLUSTER, pattern=ID_PATTERN)
    resources: Resources | None = None
    timeout: str = "1h"
    retries: int = Field(default=0, ge=0, le=20)
    env_manager: EnvManager = EnvManager.AUTO
    mlflow_run_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{32}$",
        description="an existing MLflow run to log into; by default the API creates one",
    )

    def project(self) -> ProjectRef:
        return ProjectRef(uri=self.uri, version=self.version, subdirectory=self.subdirectory)


class Cancelled(BaseModel):
    id: str
    cancel_requested: bool
