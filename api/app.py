"""The Parallels REST API: `create_app(settings)` builds the Starlette application.

Templates live in the SQL store; runs and schedules live in Temporal (nothing else keeps run
state). Routes are declared as `Endpoint`s in `api/routes/`, and the OpenAPI document served at
/api/v1/openapi.json is generated from the same pydantic models that validate the requests.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from temporalio.client import Client
from temporalio.service import RPCError

from api.auth import Authenticator, parse_tokens
from api.context import Context
from api.errors import ApiError, handle
from api.models import Error
from api.openapi import document
from api.openapi import routes as routes_of
from api.routes import runs, schedules, system, templates
from api.store import TemplateStore
from parallels.errors import ParallelsError
from parallels.settings import Settings
from parallels.spec import DagSpec

log = logging.getLogger(__name__)
OPENAPI = "/api/v1/openapi.json"
PUBLIC = {"/health", OPENAPI}


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

    from parallels.temporal import connect as connect_temporal
    from parallels.temporal import connect_options

    if temporal is None:
        connect_options(settings)  # bad TLS or codec settings stop the start, not a request

    async def connect() -> Client:
        return await connect_temporal(settings)

    ctx = Context(settings, store or TemplateStore(settings.store_url), temporal or connect)
    endpoints = [
        *templates.endpoints(ctx),
        *runs.endpoints(ctx),
        *schedules.endpoints(ctx),
        *system.endpoints(ctx),
    ]
    schema = document(endpoints, title="Parallels API", version="1", error=Error, shared=[DagSpec])

    async def openapi(request: Request) -> Response:
        return JSONResponse(schema)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes: list[BaseRoute] = [
        Route("/health", health),
        Route(OPENAPI, openapi),
        *routes_of(endpoints),
    ]

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
        ctx.templates.engine.dispose()

    app = Starlette(
        routes=routes,
        middleware=[*_cors(settings), Middleware(AuthMiddleware)],
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
    app.state.openapi = schema
    return app


def _cors(settings: Settings) -> list[Middleware]:
    # Before auth, so a browser's preflight (which carries no token) gets its answer.
    origins = [o.strip() for o in settings.api_cors_origins.split(",") if o.strip()]
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            max_age=600,
        )
    ]
