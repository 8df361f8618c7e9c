"""Deterministic names and keys derived from (workflow, node, partition). Pure.

Every side effect an activity makes is named from these, so a retried activity finds and reuses
what its earlier attempt made instead of making a second one.
"""

from __future__ import annotations

import hashlib
import re

CONTROL_QUEUE = "parallels"
KEY_TAG = "parallels.key"


def cluster_queue(control_queue: str, cluster: str) -> str:
    """Activities of a cluster run on `<control queue>-<cluster>`, e.g. `parallels-local`."""
    return f"{control_queue}-{cluster}"


def dag_key(workflow_id: str, first_run_id: str) -> str:
    # The first run id tells apart two DAG runs that reuse one workflow id.
    return f"{workflow_id}@{first_run_id}"


def node_key(dag: str, node_id: str) -> str:
    return f"{dag}/{node_id}"


def partition_key(node: str, index: int) -> str:
    return f"{node}/{index}"


def node_workflow_id(dag_workflow_id: str, node_id: str) -> str:
    return f"{dag_workflow_id}/{node_id}"


def safe_name(key: str, max_len: int = 63) -> str:
    """A filesystem/DNS-safe name for a key, unique through a short hash suffix."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    base = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")
    base = base[: max_len - len(digest) - 1].rstrip("-")
    return f"{base}-{digest}" if base else digest
