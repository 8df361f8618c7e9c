"""Connecting to Temporal the same way everywhere (CLI, worker, API, tests)."""

from __future__ import annotations

import logging

from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

log = logging.getLogger(__name__)

SEARCH_ATTRIBUTES = {
    "ParallelsDag": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "MlflowRunId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
}


async def connect(address: str, namespace: str = "default") -> Client:
    return await Client.connect(
        address, namespace=namespace, data_converter=pydantic_data_converter
    )


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register our search attributes if missing; workflows upsert them on every run."""
    try:
        have = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        missing = {k: v for k, v in SEARCH_ATTRIBUTES.items() if k not in have.custom_attributes}
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
            )
            log.info("registered search attributes %s", ", ".join(missing))
    except RPCError as e:
        log.warning(
            "could not check/register search attributes %s (%s); register them with "
            "`temporal operator search-attribute create` or runs will fail to start",
            ", ".join(SEARCH_ATTRIBUTES),
            e.message,
        )


async def pollers(
    client: Client,
    namespace: str,
    queue: str,
    kind: TaskQueueType.ValueType = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
) -> int:
    """How many workers polled `queue` lately (Temporal remembers a poller for a few minutes)."""
    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind
        )
    )
    return len({p.identity for p in resp.pollers})
