"""The pages of the Parallels tab and the same-origin proxy they call the Parallels API through.

Mounted at /parallels inside the MLflow server. The browser keeps the user's own API token and
sends it with each request; the proxy forwards it and holds no token of its own, so the MLflow
server never acts for anyone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mlflow_parallels_plugin.settings import PluginSettings

STATIC = Path(__file__).parent / "static"
API_PREFIX = "/api/v1/"
# Request headers worth forwarding; cookies of the MLflow UI stay behind.
_FORWARD_REQUEST = ("authorization", "content-type", "accept", "last-event-id")
_FORWARD_RESPONSE = ("content-type", "cache-control", "allow", "location", "retry-after")


def error(status: int, code: str, message: str) -> JSONResponse:
    """The Parallels API's error shape, so the pages handle proxy and API errors alike."""
    return JSONResponse({"error": code, "message": message}, status_code=status)


class Proxy:
    def __init__(self, settings: PluginSettings) -> None:
        self._settings = settings
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        # Created on first use: Starlette does not run the lifespan of a mounted app.
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._settings.api_url,
                timeout=httpx.Timeout(self._settings.timeout_seconds),
            )
        return self._client

    async def handle(self, request: Request) -> Response:
        path = request.path_params["path"]
        if any(part in ("", ".", "..") for part in path.split("/")):
            return error(400, "bad_path", f"not an API path: {path!r}")
        body = await _read_limited(request, self._settings.max_body_bytes)
        if body is None:
            return error(
                413,
                "too_large",
                f"request body over {self._settings.max_body_bytes} bytes "
                "(PARALLELS_UI_MAX_BODY_BYTES of the MLflow server)",
            )
        headers = {k: v for k, v in request.headers.items() if k in _FORWARD_REQUEST}
        streaming = path.endswith("/events")
        upstream = self.client.build_request(
            request.method,
            API_PREFIX + path,
            params=str(request.query_params),
            headers=headers,
            content=body,
            # An event stream lasts as long as its run: no read timeout there.
            timeout=httpx.Timeout(self._settings.timeout_seconds, read=None) if streaming else None,
        )
        try:
            answer = await self.client.send(upstream, stream=True)
        except httpx.TimeoutException:
            return error(504, "api_timeout", f"the Parallels API at {self._settings.api_url} "
                         f"did not answer within {self._settings.timeout_seconds:g} s")  # fmt: skip
        except httpx.HTTPError as e:
            return error(
                503,
                "api_unreachable",
                f"the Parallels API at {self._settings.api_url} is unreachable ({e}); "
                "set PARALLELS_API_URL for the MLflow server",
            )
        out_headers = {k: v for k, v in answer.headers.items() if k in _FORWARD_RESPONSE}
        if streaming and answer.status_code == 200:
            out_headers["x-accel-buffering"] = "no"
            return _Streamed(answer, out_headers)
        try:
            content = await answer.aread()
        finally:
            await answer.aclose()
        return Response(content, status_code=answer.status_code, headers=out_headers)


class _Streamed(Response):
    """Relays an upstream event stream chunk by chunk and closes it when the browser leaves."""

    def __init__(self, upstream: httpx.Response, headers: dict[str, str]) -> None:
        super().__init__(status_code=upstream.status_code, headers=headers)
        self._upstream = upstream

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})  # fmt: skip
        try:
            async for chunk in self._upstream.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the browser went away; the upstream stream is closed below
        finally:
            await self._upstream.aclose()


async def _read_limited(request: Request, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _body(request: Request) -> bytes | Response:
    settings: PluginSettings = request.app.state.settings
    raw = await _read_limited(request, settings.max_body_bytes)
    if raw is None:
        return error(413, "too_large", f"document over {settings.max_body_bytes} bytes")
    return raw


async def yaml_dump(request: Request) -> Response:
    """A spec (JSON) as YAML, for export: same keys, same order, block style."""
    raw = await _body(request)
    if isinstance(raw, Response):
        return raw
    try:
        doc = json.loads(raw or b"null")
    except ValueError as e:
        return error(400, "bad_json", f"not JSON: {e}")
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return PlainTextResponse(text, media_type="application/yaml")


async def yaml_load(request: Request) -> Response:
    """Imported YAML as JSON, or a 400 naming the line and column of the problem."""
    raw = await _body(request)
    if isinstance(raw, Response):
        return raw
    try:
        doc = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return error(400, "bad_yaml", "the file is not UTF-8 text")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        return error(400, "bad_yaml", f"invalid YAML{where}: {problem}")
    if not isinstance(doc, dict):
        return error(400, "bad_yaml", "a DAG spec is a mapping with `name` and `nodes`")
    return JSONResponse(doc)


async def index(_: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})


def build_web_app(settings: PluginSettings) -> Starlette:
    proxy = Proxy(settings)
    methods = ["GET", "POST", "PUT", "DELETE"]
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/yaml/dump", yaml_dump, methods=["POST"]),
            Route("/yaml/load", yaml_load, methods=["POST"]),
            Route("/api/{path:path}", proxy.handle, methods=methods),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )
    app.state.settings = settings
    return app
