"""The Parallels REST API: `create_app(settings)` builds the Starlette application.

Templates live in the SQL store; runs live in Temporal (nothing else keeps run state).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.schemas import SchemaGenerator
from temporalio.client import Client
from temporalio.service import RPCError

from api.auth import Authenticator, User, parse_tokens
from api.errors import ApiError, handle
from api.runs import STATUSES, RunService
from api.store import TemplateStore
from parallels.errors import ParallelsError
from parallels.settings import Settings
from parallels.spec import Scalar
from parallels.validation import apply_overrides, load_spec

log = logging.getLogger(__name__)
PUBLIC = {"/health", "/api/v1/openapi.json"}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TemplateBody(_Body):
    spec: dict[str, Any]


class RunBody(_Body):
    template: str | None = None
    version: int | None = Field(default=None, ge=1)
    spec: dict[str, Any] | None = None
    parameters: dict[str, Scalar] = Field(default_factory=dict)
    run_name: str | None = Field(default=None, max_length=250)
    experiment: str | None = Field(default=None, min_length=1, max_length=500)


def create_app(
    settings: Settings,
    *,
    store: TemplateStore | None = None,
    temporal: Callable[[], Awaitable[Client]] | None = None,
) -> Starlette:
    """`temporal` connects to Temporal on first use (so the API starts while Temporal is down)."""
    auth = Authenticator(
        parse_tokens(settings.api_tokens, settings.api_tokens_file), open_mode=settings.api_open
    )
    templates = store or TemplateStore(settings.store_url)
    client: list[Client] = []

    async def connect() -> Client:
        from parallels.temporal import connect as connect_temporal

        return await connect_temporal(settings.temporal_address, settings.temporal_namespace)

    async def runs() -> RunService:
        if not client:
            try:
                client.append(await (temporal or connect)())
            except Exception as e:
                raise ApiError(
                    503, "unavailable", f"Temporal at {settings.temporal_address} unreachable: {e}"
                ) from e
        return RunService(client[0], settings)

    async def body(request: Request, model: type[Any]) -> Any:
        raw = await request.body()
        if len(raw) > settings.api_max_body_bytes:
            raise ApiError(
                413, "too_large", f"request body over {settings.api_max_body_bytes} bytes"
            )
        return model.model_validate(json.loads(raw or b"null"))

    def user(request: Request) -> User:
        found: User = request.state.user
        return found

    # --- templates ---
    async def validate(request: Request) -> Response:
        """Validate a DAG spec without saving it.
        ---
        responses:
          200: {description: valid}
          422: {description: every problem with its path}
        """
        b = await body(request, TemplateBody)
        spec = load_spec(b.spec, max_parallelism=settings.max_parallelism)
        return JSONResponse({"valid": True, "name": spec.name, "nodes": len(spec.nodes)})

    async def create_template(request: Request) -> Response:
        """Create a template (version 1).
        ---
        responses:
          201: {description: created}
          409: {description: a template of that name exists}
          422: {description: invalid spec, every problem with its path}
        """
        b = await body(request, TemplateBody)
        spec = load_spec(b.spec, max_parallelism=settings.max_parallelism)
        t = await asyncio.to_thread(templates.create, spec.name, b.spec, user(request).name)
        return JSONResponse(t.model_dump(mode="json"), 201)

    async def list_templates(request: Request) -> Response:
        """Latest version of every template, paged with offset and limit."""
        offset, limit = _int(request, "offset", 0, 0, 10**9), _int(request, "limit", 50, 1, 500)
        items, total = await asyncio.to_thread(templates.list, offset, limit)
        return JSONResponse(
            {"items": [t.model_dump(mode="json") for t in items], "total": total, "offset": offset}
        )

    async def get_template(request: Request) -> Response:
        """A template: the latest version, or ?version=N."""
        version = _int(request, "version", None, 1, 10**9)
        t = await asyncio.to_thread(templates.get, request.path_params["name"], version)
        return JSONResponse(t.model_dump(mode="json"))

    async def template_versions(request: Request) -> Response:
        """Every version of a template."""
        items = await asyncio.to_thread(templates.versions, request.path_params["name"])
        return JSONResponse({"items": [t.model_dump(mode="json") for t in items]})

    async def update_template(request: Request) -> Response:
        """Save a new version of a template."""
        name = request.path_params["name"]
        b = await body(request, TemplateBody)
        spec = load_spec(b.spec, max_parallelism=settings.max_parallelism)
        if spec.name != name:
            raise ApiError(422, "name_mismatch", f"spec name '{spec.name}' differs from '{name}'")
        t = await asyncio.to_thread(templates.update, name, b.spec, user(request).name)
        return JSONResponse(t.model_dump(mode="json"))

    async def delete_template(request: Request) -> Response:
        """Delete a template and all its versions."""
        await asyncio.to_thread(templates.delete, request.path_params["name"])
        return Response(status_code=204)

    # --- runs ---
    async def start_run(request: Request) -> Response:
        """Start a DAG run from a template (+ parameters) or an inline spec.
        ---
        responses:
          201: {description: started}
          404: {description: no such template or version}
          422: {description: invalid spec or parameters}
        """
        b = await body(request, RunBody)
        if (b.template is None) == (b.spec is None):
            raise ApiError(422, "invalid_request", "give exactly one of 'template' or 'spec'")
        version = None
        if b.template is not None:
            t = await asyncio.to_thread(templates.get, b.template, b.version)
            raw, version = dict(t.spec), t.version
        else:
            assert b.spec is not None
            raw = dict(b.spec)
        if b.experiment:
            raw["experiment"] = b.experiment
        # Refuse a bad spec or unknown parameter here (422), before anything starts.
        apply_overrides(load_spec(raw, max_parallelism=settings.max_parallelism), b.parameters)
        service = await runs()
        run = await service.start(
            raw,
            parameters=b.parameters,
            run_name=b.run_name,
            owner=user(request).name,
            template_version=version,
        )
        return JSONResponse(run.model_dump(mode="json"), 201)

    async def list_runs(request: Request) -> Response:
        """DAG runs, newest first; filter by ?template= and ?status=."""
        status = request.query_params.get("status")
        if status is not None and status not in STATUSES:
            raise ApiError(422, "invalid_request", f"status must be one of {', '.join(STATUSES)}")
        limit = _int(request, "limit", 50, 1, 500)
        items = await (await runs()).list(request.query_params.get("template"), status, limit)
        return JSONResponse({"items": [r.model_dump(mode="json") for r in items]})

    async def get_run(request: Request) -> Response:
        """A run: status, per-node and per-partition progress, MLflow and Temporal links."""
        run = await (await runs()).get(request.path_params["id"])
        return JSONResponse(run.model_dump(mode="json"))

    async def cancel_run(request: Request) -> Response:
        """Cancel a run: its processes are killed and its MLflow runs marked KILLED."""
        await (await runs()).cancel(request.path_params["id"])
        return JSONResponse({"id": request.path_params["id"], "cancel_requested": True}, 202)

    async def retry_run(request: Request) -> Response:
        """Start a new run of a failed or cancelled run, reusing the nodes that succeeded.
        ---
        responses:
          201: {description: the new run}
          409: {description: the run is still running or succeeded}
        """
        run = await (await runs()).retry(request.path_params["id"], user(request).name)
        return JSONResponse(run.model_dump(mode="json"), 201)

    async def run_events(request: Request) -> Response:
        """Server-sent events: a `progress` event on every change, then `end`."""
        service = await runs()
        run_id = request.path_params["id"]
        await service.get(run_id, with_progress=False)  # 404 before the stream starts

        async def stream() -> AsyncIterator[str]:
            last = None
            while True:
                run = await service.get(run_id)
                data = run.model_dump_json()
                if data != last:
                    yield f"event: progress\ndata: {data}\n\n"
                    last = data
                if run.status != "running":
                    yield f"event: end\ndata: {json.dumps({'status': run.status})}\n\n"
                    return
                await asyncio.sleep(1.0)

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def clusters(request: Request) -> Response:
        """Execution targets, and how many workers poll each one's task queue right now."""
        from api.clusters import list_clusters

        service = await runs()
        return JSONResponse(await list_clusters(service.client, settings))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes: list[BaseRoute] = [
        Route("/health", health, include_in_schema=False),
        Route("/api/v1/templates/validate", validate, methods=["POST"]),
        Route("/api/v1/templates", create_template, methods=["POST"]),
        Route("/api/v1/templates", list_templates, methods=["GET"]),
        Route("/api/v1/templates/{name}", get_template, methods=["GET"]),
        Route("/api/v1/templates/{name}", update_template, methods=["PUT"]),
        Route("/api/v1/templates/{name}", delete_template, methods=["DELETE"]),
        Route("/api/v1/templates/{name}/versions", template_versions, methods=["GET"]),
        Route("/api/v1/runs", start_run, methods=["POST"]),
        Route("/api/v1/runs", list_runs, methods=["GET"]),
        Route("/api/v1/runs/{id}", get_run, methods=["GET"]),
        Route("/api/v1/runs/{id}/cancel", cancel_run, methods=["POST"]),
        Route("/api/v1/runs/{id}/retry", retry_run, methods=["POST"]),
        Route("/api/v1/runs/{id}/events", run_events, methods=["GET"]),
        Route("/api/v1/clusters", clusters, methods=["GET"]),
    ]
    schemas = SchemaGenerator(
        {"openapi": "3.0.0", "info": {"title": "Parallels API", "version": "1"}}
    )

    async def openapi(request: Request) -> Response:
        return JSONResponse(schemas.get_schema(routes=routes))

    routes.append(Route("/api/v1/openapi.json", openapi, include_in_schema=False))

    class AuthMiddleware(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            if request.url.path not in PUBLIC:
                try:
                    request.state.user = auth.user(request.headers.get("authorization"))
                except Exception as e:
                    return await handle(request, e)
            return await call_next(request)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        templates.engine.dispose()

    return Starlette(
        routes=routes,
        middleware=[Middleware(AuthMiddleware)],
        # Typed handlers run inside Starlette's ExceptionMiddleware (a plain response); only a
        # truly unexpected error reaches the Exception handler, which logs it and answers 500.
        exception_handlers={
            **dict.fromkeys(
                (ApiError, ParallelsError, ValueError, RPCError, HTTPException), handle
            ),
            Exception: handle,
        },
        lifespan=lifespan,
    )


def _int(request: Request, name: str, default: Any, lo: int, hi: int) -> Any:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            422, "invalid_request", f"query parameter '{name}' must be an integer"
        ) from None
    if not lo <= value <= hi:
        raise ApiError(422, "invalid_request", f"query parameter '{name}' must be in {lo}..{hi}")
    return value
