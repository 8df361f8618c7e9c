"""The MLflow plugin's own logic: settings, URIs, backend config, the tab script, and the proxy
(against a real upstream HTTP server on loopback)."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
import uvicorn
from mlflow.exceptions import ExecutionException
from mlflow_parallels_plugin.app import TAB_SCRIPT, inject_tab
from mlflow_parallels_plugin.backend import parse_config, split_uri
from mlflow_parallels_plugin.settings import PluginConfigError, PluginSettings
from mlflow_parallels_plugin.web import build_web_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from parallels.stack import free_port


def test_settings_from_env_and_their_errors():
    s = PluginSettings.from_env({"PARALLELS_API_URL": "https://p.example.com/ "})
    assert s.api_url == "https://p.example.com" and s.max_body_bytes == 1_000_000
    s = PluginSettings.from_env({"PARALLELS_UI_MAX_BODY_BYTES": "2048"})
    assert s.max_body_bytes == 2048 and s.api_url == "http://127.0.0.1:8000"
    with pytest.raises(PluginConfigError, match="PARALLELS_API_URL must be an http"):
        PluginSettings.from_env({"PARALLELS_API_URL": "p.example.com"})
    with pytest.raises(PluginConfigError, match="PARALLELS_UI_TIMEOUT_SECONDS must be a number"):
        PluginSettings.from_env({"PARALLELS_UI_TIMEOUT_SECONDS": "soon"})
    with pytest.raises(PluginConfigError, match="must be positive"):
        PluginSettings.from_env({"PARALLELS_UI_MAX_BODY_BYTES": "0"})


def test_project_uris_as_mlflow_writes_them(tmp_path):
    assert split_uri("https://g.example.com/r.git#sub/dir") == (
        "https://g.example.com/r.git",
        "sub/dir",
    )
    assert split_uri("git@g.example.com:team/r.git") == ("git@g.example.com:team/r.git", "")
    (tmp_path / "proj").mkdir()
    rel = tmp_path / "proj"
    assert split_uri(f"{rel}#x") == (str(rel.resolve()), "x")


def test_backend_config_keys():
    env = {"PARALLELS_API_URL": "http://api:8000", "PARALLELS_API_TOKEN": "t"}
    cfg = parse_config({"cluster": "gpu", "ENV_MANAGER": "local", "SYNCHRONOUS": False}, env)
    assert cfg == {"cluster": "gpu", "api_url": "http://api:8000", "token": "t"}
    assert parse_config({"api_url": "http://x", "token": "mine"}, env)["token"] == "mine"
    assert parse_config({}, {})["token"] is None
    with pytest.raises(ExecutionException, match=r"unknown backend config key\(s\) \['gpus'\]"):
        parse_config({"gpus": 1}, env)


def test_tab_script_is_added_once_before_the_body_ends():
    html = "<html><body><div id=root></div></body></html>"
    once = inject_tab(html)
    assert once.count(TAB_SCRIPT) == 1 and once.endswith(TAB_SCRIPT + "</body></html>")
    assert inject_tab(once) == once
    assert inject_tab("not html") == "not html"


async def _echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": str(request.query_params),
            "headers": dict(request.headers),
            "body": body.decode(),
        },
        status_code=int(request.query_params.get("status", "200")),
    )


@contextlib.asynccontextmanager
async def upstream():
    port = free_port()
    app = Starlette(routes=[Route("/{p:path}", _echo, methods=["GET", "POST", "PUT", "DELETE"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def plugin(api_url: str, **kw) -> httpx.AsyncClient:
    app = build_web_app(PluginSettings(api_url=api_url, **kw))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mlflow")


async def test_proxy_forwards_the_users_token_but_not_mlflow_cookies():
    async with upstream() as url, plugin(url) as ui:
        r = await ui.post(
            "/api/templates/validate?x=1&x=2",
            content=b'{"spec": {}}',
            headers={"Authorization": "Bearer users-own", "Cookie": "mlflow-session=s",
                     "Content-Type": "application/json"},
        )  # fmt: skip
        assert r.status_code == 200
        seen = r.json()
        assert seen["method"] == "POST" and seen["path"] == "/api/v1/templates/validate"
        assert seen["query"] == "x=1&x=2" and seen["body"] == '{"spec": {}}'
        assert seen["headers"]["authorization"] == "Bearer users-own"
        assert "cookie" not in seen["headers"]
        # The API's own status and JSON come back as they are.
        r = await ui.get("/api/runs/x?status=404")
        assert r.status_code == 404 and r.json()["path"] == "/api/v1/runs/x"


async def test_proxy_errors_are_json_with_the_fix():
    async with upstream() as url, plugin(url, max_body_bytes=1024) as ui:
        r = await ui.post("/api/templates", content=b"x" * 2000)
        assert r.status_code == 413 and "PARALLELS_UI_MAX_BODY_BYTES" in r.json()["message"]
        r = await ui.get("/api/runs/../../health")
        assert r.status_code in (400, 404)
        r = await ui.get("/api/runs/%2E%2E/x")
        assert r.status_code == 400 and r.json()["error"] == "bad_path"
    async with plugin(f"http://127.0.0.1:{free_port()}") as ui:
        r = await ui.get("/api/templates")
        assert r.status_code == 503
        assert "set PARALLELS_API_URL for the MLflow server" in r.json()["message"]


async def test_yaml_import_and_export():
    async with plugin("http://127.0.0.1:1") as ui:
        spec = {"name": "d", "nodes": [{"id": "a", "project": {"uri": "/r"}}]}
        r = await ui.post("/yaml/dump", json=spec)
        assert r.status_code == 200 and r.text.startswith("name: d\nnodes:\n- id: a\n")
        r = await ui.post("/yaml/load", content=r.text.encode())
        assert r.json() == spec
        r = await ui.post("/yaml/load", content=b"name: x\nnodes: [\n")
        assert r.status_code == 400 and "line 3" in r.json()["message"]
        r = await ui.post("/yaml/load", content=b"- just\n- a list\n")
        assert r.status_code == 400 and "mapping" in r.json()["message"]
        r = await ui.post("/yaml/load", content=b"\xff\xfe")
        assert r.status_code == 400 and "UTF-8" in r.json()["message"]
        r = await ui.get("/")
        assert r.status_code == 200 and 'src="/parallels/static/main.js"' in r.text
        r = await ui.get("/static/designer.js")
        assert r.status_code == 200 and "export async function show" in r.text
