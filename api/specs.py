"""A DAG spec checked against this deployment: its parallelism bound and the clusters it runs."""

from __future__ import annotations

from typing import Any

from parallels.settings import Settings
from parallels.spec import DagSpec
from parallels.validation import load_spec


def load_for(settings: Settings, data: Any) -> DagSpec:
    return load_spec(
        data, max_parallelism=settings.max_parallelism, clusters=settings.cluster_names
    )
