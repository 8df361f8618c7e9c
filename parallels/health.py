"""GET /healthz for a worker process: 200 while every Temporal worker in it runs, else 503."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger(__name__)


def app(tasks: Sequence[asyncio.Task[None]]) -> Starlette:
    async def healthz(request: Request) -> JSONResponse:
        stopped = sum(t.done() for t in tasks)
        if stopped:
            return JSONResponse({"status": "failing", "workers_stopped": stopped}, 503)
        return JSONResponse({"status": "ok", "workers": len(tasks)})

    return Starlette(routes=[Route("/healthz", healthz)])


@contextlib.asynccontextmanager
async def serving(
    host: str, port: int | None, tasks: Sequence[asyncio.Task[None]]
) -> AsyncIterator[None]:
    """Serve /healthz on `host`:`port` while inside; no port: no endpoint."""
    if port is None:
        yield
        return
    config = uvicorn.Config(app(tasks), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    serve = asyncio.create_task(server.serve())
    log.info("health endpoint on %s:%d/healthz", host, port)
    try:
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serve, 5)
