"""Starting DAG runs and watching them from Python (used by the CLI, the demo and tests)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from parallels.models import DagProgress, DagRunInput, DagRunResult
from parallels.spec import Scalar
from workflows.dag import DAG_ATTR, OWNER_ATTR

_STYLE = {
    "pending": "dim",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "yellow",
    "skipped": "dim",
}


async def start_run(
    client: Client,
    inp: DagRunInput,
    *,
    task_queue: str,
    workflow_id: str | None = None,
    memo: Mapping[str, Any] | None = None,
) -> WorkflowHandle[Any, DagRunResult]:
    """Start a DagRunWorkflow: the one place that names runs and tags them with their DAG."""
    name = str(inp.spec.get("name", "dag"))
    pairs: list[SearchAttributePair[str]] = [SearchAttributePair(DAG_ATTR, name)]
    if inp.owner:
        pairs.append(SearchAttributePair(OWNER_ATTR, inp.owner))
    return await client.start_workflow(
        "DagRunWorkflow",
        inp,
        id=workflow_id or f"{name}-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue,
        result_type=DagRunResult,
        search_attributes=TypedSearchAttributes(pairs),
        memo=dict(memo) if memo else None,
    )


async def start_dag(
    client: Client,
    spec: Mapping[str, Any],
    *,
    task_queue: str,
    parameters: Mapping[str, Scalar] | None = None,
    run_name: str | None = None,
    workflow_id: str | None = None,
) -> WorkflowHandle[Any, DagRunResult]:
    inp = DagRunInput(spec=dict(spec), parameters=dict(parameters or {}), run_name=run_name)
    return await start_run(client, inp, task_queue=task_queue, workflow_id=workflow_id)


async def progress(handle: WorkflowHandle[Any, Any]) -> DagProgress | None:
    try:
        found: DagProgress = await handle.query("progress", result_type=DagProgress)
        return found
    except RPCError:
        return None


def render(p: DagProgress) -> Table:
    table = Table(title=f"{p.dag}: [{_STYLE.get(p.status, '')}]{p.status}[/]", expand=False)
    table.add_column("node")
    table.add_column("state")
    table.add_column("partitions", justify="right")
    table.add_column("progress")
    for node_id, n in p.nodes.items():
        total = len(n.partitions)
        done = sum(s == "succeeded" for s in n.partitions)
        running = sum(s == "running" for s in n.partitions)
        failed = sum(s == "failed" for s in n.partitions)
        width = 20
        filled = int(width * done / total) if total else 0
        bar = "[green]" + "█" * filled + "[/]" + "░" * (width - filled)
        counts = f"{done}/{total}" if total else "-"
        extra = ", ".join(
            x
            for x in (f"{running} running" if running else "", f"{failed} failed" if failed else "")
            if x
        )
        table.add_row(
            node_id,
            f"[{_STYLE.get(n.state, '')}]{n.state}[/]",
            counts,
            bar + (f" {extra}" if extra else ""),
        )
    return table


async def watch(
    handle: WorkflowHandle[Any, DagRunResult],
    console: Console | None = None,
    interval: float = 0.5,
    on_progress: Callable[[DagProgress], None] | None = None,
) -> tuple[DagRunResult | None, DagProgress | None, str | None]:
    """Follow a run to its end: (result if it succeeded, last progress, error message)."""
    console = console or Console()
    result_task = asyncio.ensure_future(handle.result())
    last: DagProgress | None = None
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while not result_task.done():
            p = await progress(handle)
            if p is not None:
                last = p
                live.update(render(p))
                if on_progress:
                    on_progress(p)
            await asyncio.wait({result_task}, timeout=interval)
        final = await progress(handle)
        if final is not None:
            last = final
            live.update(render(final))
    try:
        return result_task.result(), last, None
    except WorkflowFailureError as e:
        cause = e.cause
        message = getattr(cause, "message", None) or str(cause or e)
        return None, last, message
