"""Deterministic Temporal workflows. They never import kubernetes, mlflow or git."""

from workflows.dag import DagRunWorkflow
from workflows.node import NodeWorkflow

WORKFLOWS = [DagRunWorkflow, NodeWorkflow]

__all__ = ["WORKFLOWS", "DagRunWorkflow", "NodeWorkflow"]
