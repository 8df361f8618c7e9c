"""Execution targets and health."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.clusters import Clusters, list_clusters
from api.context import Context, json_of
from api.openapi import Endpoint


def endpoints(ctx: Context) -> list[Endpoint]:
    async def get_clusters(request: Request) -> Response:
        return JSONResponse(json_of(await list_clusters(await ctx.client(), ctx.settings)))

    return [
        Endpoint(
            "GET",
            "/api/v1/clusters",
            get_clusters,
            "Execution targets, and how many workers poll each one's task queue right now",
            responses={200: ("the control queue and every cluster", Clusters)},
        )
    ]
