"""Execution targets and whether a worker is polling each (from Temporal's task queues)."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.client import Client

from parallels import naming
from parallels.settings import Settings
from parallels.temporal import pollers


class Cluster(BaseModel):
    name: str
    task_queue: str
    workers: int
    polling: bool


class Clusters(BaseModel):
    control: Cluster
    items: list[Cluster]


async def list_clusters(client: Client, settings: Settings) -> Clusters:
    ns = settings.temporal_namespace
    control = await pollers(client, ns, settings.task_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
    clusters = []
    for name in settings.cluster_names:
        queue = naming.cluster_queue(settings.task_queue, name)
        n = await pollers(client, ns, queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
        clusters.append(Cluster(name=name, task_queue=queue, workers=n, polling=n > 0))
    return Clusters(
        control=Cluster(
            name="control", task_queue=settings.task_queue, workers=control, polling=control > 0
        ),
        items=clusters,
    )
