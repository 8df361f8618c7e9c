"""Schedules: periodic runs of a template (Temporal Schedules)."""

from __future__ import annotations

import asyncio
import functools

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.context import Context, json_of
from api.models import Error, StrictBody
from api.openapi import Endpoint, Query
from api.schedules import ScheduleBody, ScheduleList, ScheduleOut
from api.specs import load_for
from parallels.validation import apply_overrides


class PauseBody(StrictBody):
    note: str = Field(default="", max_length=500)


def endpoints(ctx: Context) -> list[Endpoint]:
    async def create_schedule(request: Request) -> Response:
        b = await ctx.body(request, ScheduleBody)
        t = await asyncio.to_thread(
            functools.partial(ctx.templates.get, b.template, b.version, viewer=ctx.viewer(request))
        )
        # A schedule that could never start a run is refused now, not at 3 a.m.
        spec = load_for(ctx.settings, t.spec)
        apply_overrides(spec, b.parameters)
        out = await (await ctx.schedules()).create(
            b, dict(t.spec), t.version, ctx.user(request).name
        )
        return JSONResponse(json_of(out), 201)

    async def list_schedules(request: Request) -> Response:
        limit = ctx.integer(request, "limit", 100, 1, 500)
        service = await ctx.schedules()
        items = await service.list(request.query_params.get("template"), limit)
        return JSONResponse(json_of(ScheduleList(items=items)))

    async def get_schedule(request: Request) -> Response:
        out = await (await ctx.schedules()).get(request.path_params["id"])
        return JSONResponse(json_of(out))

    async def pause_schedule(request: Request) -> Response:
        b = await ctx.body(request, PauseBody)
        service = await ctx.schedules()
        return JSONResponse(
            json_of(await service.set_paused(request.path_params["id"], True, b.note))
        )

    async def unpause_schedule(request: Request) -> Response:
        b = await ctx.body(request, PauseBody)
        service = await ctx.schedules()
        out = await service.set_paused(request.path_params["id"], False, b.note)
        return JSONResponse(json_of(out))

    async def trigger_schedule(request: Request) -> Response:
        await (await ctx.schedules()).trigger(request.path_params["id"])
        return Response(status_code=202)

    async def delete_schedule(request: Request) -> Response:
        await (await ctx.schedules()).delete(request.path_params["id"])
        return Response(status_code=204)

    base = "/api/v1/schedules"
    missing = ("no such schedule", Error)
    return [
        Endpoint(
            "POST",
            base,
            create_schedule,
            "Create a schedule of a template version (cron expressions or an interval)",
            body=ScheduleBody,
            responses={
                201: ("created", ScheduleOut),
                404: ("no such template or version", Error),
                409: ("a schedule of that id exists", Error),
            },
        ),
        Endpoint(
            "GET",
            base,
            list_schedules,
            "Schedules, by id",
            query=(
                Query("template", {"type": "string"}, "only schedules of this template"),
                Query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
            ),
            responses={200: ("schedules", ScheduleList)},
        ),
        Endpoint(
            "GET",
            f"{base}/{{id}}",
            get_schedule,
            "A schedule, its next run times and its recent runs",
            responses={200: ("the schedule", ScheduleOut), 404: missing},
        ),
        Endpoint(
            "POST",
            f"{base}/{{id}}/pause",
            pause_schedule,
            "Pause a schedule",
            body=PauseBody,
            responses={200: ("paused", ScheduleOut), 404: missing},
        ),
        Endpoint(
            "POST",
            f"{base}/{{id}}/unpause",
            unpause_schedule,
            "Resume a paused schedule",
            body=PauseBody,
            responses={200: ("running", ScheduleOut), 404: missing},
        ),
        Endpoint(
            "POST",
            f"{base}/{{id}}/trigger",
            trigger_schedule,
            "Start a run of the schedule now",
            responses={202: ("started", None), 404: missing},
        ),
        Endpoint(
            "DELETE",
            f"{base}/{{id}}",
            delete_schedule,
            "Delete a schedule (runs it started are kept)",
            responses={204: ("deleted", None), 404: missing},
        ),
    ]
