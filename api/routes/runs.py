"""Runs: DAG runs and single-project runs, all of them Temporal workflows."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from api.context import Context, json_of
from api.errors import ApiError
from api.models import Cancelled, Error, ProjectRunBody, RunBody
from api.openapi import Endpoint, Query
from api.runs import STATUSES, Run
from api.specs import load_for
from parallels.validation import apply_overrides


class RunList(BaseModel):
    items: list[Run]


def endpoints(ctx: Context) -> list[Endpoint]:
    settings = ctx.settings

    async def start_run(request: Request) -> Response:
        b = await ctx.body(request, RunBody)
        if (b.template is None) == (b.spec is None):
            raise ApiError(422, "invalid_request", "give exactly one of 'template' or 'spec'")
        version = None
        if b.template is not None:
            t = await asyncio.to_thread(
                functools.partial(
                    ctx.templates.get, b.template, b.version, viewer=ctx.viewer(request)
                )
            )
            raw, version = dict(t.spec), t.version
        else:
            assert b.spec is not None
            raw = dict(b.spec)
        if b.experiment:
            raw["experiment"] = b.experiment
        # Refuse a bad spec or unknown parameter here (422), before anything starts.
        spec = load_for(settings, raw)
        apply_overrides(spec, b.parameters)
        run = await (await ctx.runs()).start(
            raw,
            parameters=b.parameters,
            run_name=b.run_name,
            owner=ctx.user(request).name,
            template_version=version,
        )
        return JSONResponse(json_of(run), 201)

    async def start_project_run(request: Request) -> Response:
        b = await ctx.body(request, ProjectRunBody)
        service = await ctx.runs()
        run = await service.start_project(b, ctx.user(request).name, ctx.mlflow)
        return JSONResponse(json_of(run), 201)

    async def list_runs(request: Request) -> Response:
        status = request.query_params.get("status")
        if status is not None and status not in STATUSES:
            raise ApiError(422, "invalid_request", f"status must be one of {', '.join(STATUSES)}")
        limit = ctx.integer(request, "limit", 50, 1, 500)
        items = await (await ctx.runs()).list(
            request.query_params.get("template"), status, limit, owner=ctx.viewer(request)
        )
        return JSONResponse(json_of(RunList(items=items)))

    async def get_run(request: Request) -> Response:
        run = await (await ctx.runs()).get(request.path_params["id"], viewer=ctx.viewer(request))
        return JSONResponse(json_of(run))

    async def cancel_run(request: Request) -> Response:
        await (await ctx.runs()).cancel(request.path_params["id"], viewer=ctx.viewer(request))
        return JSONResponse(
            json_of(Cancelled(id=request.path_params["id"], cancel_requested=True)), 202
        )

    async def retry_run(request: Request) -> Response:
        user = ctx.user(request)
        run = await (await ctx.runs()).retry(
            request.path_params["id"], user.name, viewer=ctx.viewer(request)
        )
        return JSONResponse(json_of(run), 201)

    async def run_events(request: Request) -> Response:
        service = await ctx.runs()
        run_id = request.path_params["id"]
        viewer = ctx.viewer(request)
        await service.get(run_id, with_progress=False, viewer=viewer)  # 404 before the stream

        async def stream() -> AsyncIterator[str]:
            last = None
            while True:
                run = await service.get(run_id, viewer=viewer)
                data = run.model_dump_json()
                if data != last:
                    yield f"event: progress\ndata: {data}\n\n"
                    last = data
                if run.status != "running":
                    yield f"event: end\ndata: {json.dumps({'status': run.status})}\n\n"
                    return
                await asyncio.sleep(1.0)

        return StreamingResponse(stream(), media_type="text/event-stream")

    base = "/api/v1/runs"
    missing = ("no such run", Error)
    return [
        Endpoint(
            "POST",
            base,
            start_run,
            "Start a DAG run from a template (+ parameters) or an inline spec",
            body=RunBody,
            responses={201: ("started", Run), 404: ("no such template or version", Error)},
        ),
        Endpoint(
            "GET",
            base,
            list_runs,
            "DAG runs, newest first",
            query=(
                Query("template", {"type": "string"}, "only runs of this DAG"),
                Query("status", {"type": "string", "enum": list(STATUSES)}),
                Query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
            ),
            responses={200: ("runs", RunList)},
        ),
        Endpoint(
            "GET",
            f"{base}/{{id}}",
            get_run,
            "A run: status, per-node and per-partition progress, MLflow and Temporal links",
            responses={200: ("the run", Run), 404: missing},
        ),
        Endpoint(
            "POST",
            f"{base}/{{id}}/cancel",
            cancel_run,
            "Cancel a run: its processes are stopped and its MLflow runs marked KILLED",
            responses={202: ("cancellation requested", Cancelled), 404: missing},
        ),
        Endpoint(
            "POST",
            f"{base}/{{id}}/retry",
            retry_run,
            "Start a new run of an ended, unsuccessful run, reusing the nodes that succeeded",
            responses={
                201: ("the new run", Run),
                404: missing,
                409: ("the run is still running or succeeded", Error),
            },
        ),
        Endpoint(
            "GET",
            f"{base}/{{id}}/events",
            run_events,
            "Server-sent events: a `progress` event (a Run) on every change, then `end`",
            responses={200: ("an event stream", None), 404: missing},
            media_type="text/event-stream",
        ),
        Endpoint(
            "POST",
            "/api/v1/project-runs",
            start_project_run,
            "Run one MLflow project entry point (what `mlflow run --backend parallels` calls); "
            "`project_run_id` is the MLflow run the project logs into",
            body=ProjectRunBody,
            responses={201: ("started", Run)},
        ),
    ]
