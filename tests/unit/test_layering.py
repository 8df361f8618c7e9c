"""Layering: workflows stay deterministic, pure modules stay free of Temporal and Kubernetes."""

import subprocess
import sys

import pytest

PURE = [
    "parallels.spec",
    "parallels.validation",
    "parallels.scheduling",
    "parallels.partitioning",
    "parallels.mlproject",
    "parallels.pyenv",
    "parallels.naming",
    "parallels.models",
    "parallels.images",
    "parallels.pods",
    "parallels.podstatus",
]


def imported_by(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {m.split(".")[0] for m in out.stdout.split()}


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_neither_temporal_nor_kubernetes(module):
    assert not imported_by(module) & {"temporalio", "kubernetes", "mlflow", "git"}


@pytest.mark.parametrize("module", ["workflows", "workflows.dag", "workflows.node"])
def test_workflows_import_no_io_libraries(module):
    assert not imported_by(module) & {"kubernetes", "mlflow", "git", "httpx", "requests"}


def test_ui_plugin_imports_nothing_of_the_engine():
    # It is installed into an MLflow server's environment, without the engine.
    modules = {"mlflow_parallels_plugin.app", "mlflow_parallels_plugin.backend"}
    found = set().union(*(imported_by(m) for m in modules))
    assert not found & {"parallels", "api", "workflows", "activities", "worker", "temporalio"}
