"""Composition root: the only place where clients, activities and workers are wired together.

One process serves the control task queue (`parallels`: DAG/node workflows and bookkeeping) and
the task queue of each cluster it runs (`parallels-local`: environments and partitions).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from typing import Any

from mlflow.tracking import MlflowClient
from temporalio.client import Client
from temporalio.worker import Worker

from activities.cluster_workers import ClusterWorkers
from activities.environment import Environments
from activities.git_source import GitSources
from activities.kube import Kube, api_client
from activities.kube_environment import KubeEnvironments
from activities.kube_partition import KubePartitions
from activities.partition import LocalPartitions
from activities.planning import Planner
from activities.tracking import Tracking, TrackingActivities
from parallels import health, loopwatch, naming
from parallels.settings import Settings
from parallels.temporal import connect, ensure_search_attributes
from workflows import WORKFLOWS

log = logging.getLogger(__name__)


def build_workers(
    client: Client,
    settings: Settings,
    *,
    task_queue: str | None = None,
    clusters: Sequence[str] = ("local",),
    control: bool = True,
) -> list[Worker]:
    queue = task_queue or settings.task_queue
    # MLflow prints a "View run" line per closed run; in a worker that is noise.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    mlflow_client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    tracking = Tracking(mlflow_client)
    sources = GitSources(settings.cache_dir)
    workers: list[Worker] = []
    if control:
        bookkeeping = TrackingActivities(tracking)
        planner = Planner(mlflow_client, settings.mlflow_tracking_uri)
        cluster_workers = ClusterWorkers(settings.cluster_wait_seconds)
        workers.append(
            Worker(
                client,
                task_queue=queue,
                workflows=WORKFLOWS,
                activities=[
                    sources.resolve_project,
                    bookkeeping.open_dag_run,
                    bookkeeping.open_node_run,
                    bookkeeping.close_run,
                    planner.plan_partitions,
                    cluster_workers.await_cluster_worker,
                ],
                max_concurrent_workflow_tasks=settings.worker_max_workflow_tasks,
                max_concurrent_activities=settings.worker_max_control_activities,
                max_heartbeat_throttle_interval=timedelta(seconds=2),
                default_heartbeat_throttle_interval=timedelta(seconds=2),
                graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_seconds),
            )
        )
    for cluster in clusters:
        if cluster == "local":
            activities = _local_activities(settings, tracking, sources)
            # Environment builds share the slots with partitions: they may wait behind
            # another node's partitions, but partitions never wait on them, so no deadlock.
            slots = settings.local_slots
        else:
            activities = _kube_activities(settings, cluster, tracking, sources)
            slots = settings.kube_slots  # awaiting a pod costs the worker little
        workers.append(
            Worker(
                client,
                task_queue=naming.cluster_queue(queue, cluster),
                activities=activities,
                max_concurrent_activities=slots,
                max_heartbeat_throttle_interval=timedelta(seconds=2),
                default_heartbeat_throttle_interval=timedelta(seconds=2),
                graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_seconds),
            )
        )
    return workers


def _local_activities(
    settings: Settings, tracking: Tracking, sources: GitSources
) -> list[Callable[..., Any]]:
    partitions = LocalPartitions(
        tracking=tracking,
        tracking_uri=settings.mlflow_tracking_uri,
        work_dir=settings.work_dir,
        base_env=os.environ,  # the partition processes inherit the worker's environment
        heartbeat_seconds=settings.heartbeat_seconds,
        keep_workdirs=settings.keep_workdirs,
    )
    envs = Environments(settings.cache_dir, sources)
    return [envs.prepare_environment, partitions.run_partition]


def _kube_activities(
    settings: Settings, cluster: str, tracking: Tracking, sources: GitSources
) -> list[Callable[..., Any]]:
    config = settings.kube_cluster(cluster)
    kube = Kube(api_client(config), config)
    partitions = KubePartitions(
        kube=kube, tracking=tracking, heartbeat_seconds=settings.heartbeat_seconds
    )
    envs = KubeEnvironments(kube, sources)
    return [envs.prepare_environment, partitions.run_partition]


async def run(
    settings: Settings,
    stop: asyncio.Event | None = None,
    *,
    clusters: Sequence[str] = ("local",),
    control: bool = True,
) -> None:
    client = await connect(settings)
    if control:
        await ensure_search_attributes(client, settings.temporal_namespace)
    workers = build_workers(client, settings, clusters=clusters, control=control)
    log.info("worker polling %s", ", ".join(w.task_queue for w in workers))
    stop = stop or asyncio.Event()
    async with (
        loopwatch.watching(settings.worker_loop_stall_seconds),
        running(workers) as tasks,
        health.serving(settings.worker_health_host, settings.worker_health_port, tasks),
    ):
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if stopping not in done:
            # A worker that died (lost its Temporal connection for good, say) must take the
            # process with it, so the supervisor restarts it instead of it idling half-served.
            stopping.cancel()
            failed = next(t for t in tasks if t in done)
            cause = failed.exception() if not failed.cancelled() else None
            raise RuntimeError(f"a worker stopped unexpectedly: {cause or 'cancelled'}")
        log.info(
            "stopping: in-flight activities get %gs to finish", settings.worker_shutdown_seconds
        )


@contextlib.asynccontextmanager
async def running(workers: Sequence[Worker]) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run several workers at once; leaving shuts them all down gracefully."""
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield tasks
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run(Settings()))
