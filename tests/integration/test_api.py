"""The REST API end to end: real store (SQLite), real Temporal dev server, real worker."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

import worker as worker_mod
from api.app import create_app
from api.store import TemplateStore
from tests.integration.helpers import (
    ALICE,
    BOB,
    ROOT,
    api_for,
    node,
    spec_for,
    steps_repo,
    wait_run,
)


async def test_auth_is_required_except_for_health_and_openapi(api):
    r = await api.get("/api/v1/templates")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"] == "unauthorized"
    r = await api.get("/api/v1/templates", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["message"] == "invalid token"
    assert (await api.get("/health")).json() == {"status": "ok"}
    doc = (await api.get("/api/v1/openapi.json")).json()
    assert "/api/v1/runs" in doc["paths"] and "post" in doc["paths"]["/api/v1/templates"]


async def test_template_lifecycle(api, tmp_path):
    repo = steps_repo(tmp_path)
    spec = spec_for(repo)
    r = await api.post("/api/v1/templates", json={"spec": spec}, headers=ALICE)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1 and r.json()["owner"] == "alice"
    r = await api.post("/api/v1/templates", json={"spec": spec}, headers=ALICE)
    assert r.status_code == 409 and "already exists" in r.json()["message"]
    spec2 = {**spec, "parameters": {"n": 5}}
    r = await api.put("/api/v1/templates/tpl", json={"spec": spec2}, headers=ALICE)
    assert r.status_code == 200 and r.json()["version"] == 2
    assert (await api.get("/api/v1/templates/tpl", headers=ALICE)).json()["spec"]["parameters"] == {
        "n": 5
    }
    v1 = await api.get("/api/v1/templates/tpl", params={"version": 1}, headers=ALICE)
    assert v1.json()["spec"]["parameters"] == {"n": 3}
    versions = (await api.get("/api/v1/templates/tpl/versions", headers=ALICE)).json()["items"]
    assert [v["version"] for v in versions] == [1, 2]
    await api.post("/api/v1/templates", json={"spec": {**spec, "name": "other"}}, headers=ALICE)
    page = (await api.get("/api/v1/templates", params={"limit": 1}, headers=ALICE)).json()
    assert page["total"] == 2 and [t["name"] for t in page["items"]] == ["other"]
    assert (await api.delete("/api/v1/templates/tpl", headers=ALICE)).status_code == 204
    r = await api.get("/api/v1/templates/tpl", headers=ALICE)
    assert r.status_code == 404 and r.json()["message"] == "template 'tpl' not found"


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "expected"),
    [
        (
            "post",
            "/api/v1/templates",
            {
                "spec": {
                    "name": "x",
                    "nodes": [{"id": "a", "project": {"uri": "/r"}, "depends_on": ["b"]}],
                }
            },
            422,
            {"path": "nodes[0].depends_on[0]", "message": "unknown node 'b'"},
        ),
        (
            "post",
            "/api/v1/templates/validate",
            {"spec": {"name": "x", "nodes": []}},
            422,
            {
                "path": "nodes",
                "message": "List should have at least 1 item after validation, not 0",
            },
        ),
        (
            "post",
            "/api/v1/templates",
            {"spec": {}, "extra": 1},
            422,
            {"path": "extra", "message": "Extra inputs are not permitted"},
        ),
        (
            "post",
            "/api/v1/templates",
            {"nope": 1},
            422,
            {"path": "spec", "message": "Field required"},
        ),
        (
            "put",
            "/api/v1/templates/a",
            {"spec": {"name": "b", "nodes": [{"id": "a", "project": {"uri": "/r"}}]}},
            422,
            "spec name 'b' differs from 'a'",
        ),
        (
            "put",
            "/api/v1/templates/zz",
            {"spec": {"name": "zz", "nodes": [{"id": "a", "project": {"uri": "/r"}}]}},
            404,
            "template 'zz' not found",
        ),
        (
            "get",
            "/api/v1/templates?limit=0",
            None,
            422,
            "query parameter 'limit' must be in 1..500",
        ),
        (
            "get",
            "/api/v1/templates?offset=x",
            None,
            422,
            "query parameter 'offset' must be an integer",
        ),
        ("get", "/api/v1/runs?status=weird", None, 422, "status must be one of"),
        (
            "post",
            "/api/v1/runs",
            {"template": "a", "spec": {}},
            422,
            "give exactly one of 'template' or 'spec'",
        ),
        ("post", "/api/v1/runs", {"template": "missing"}, 404, "template 'missing' not found"),
        ("get", "/api/v1/runs/no-such-run", None, 404, "not found"),
    ],
)
async def test_bad_input_gets_a_precise_4xx(api, method, path, payload, status, expected):
    kw = {"json": payload} if payload is not None else {}
    r = await getattr(api, method)(path, headers=ALICE, **kw)
    assert r.status_code == status, r.text
    body = r.json()
    if isinstance(expected, dict):
        assert expected in body["problems"]
    else:
        assert expected in body["message"]


async def test_malformed_and_oversized_bodies(api):
    r = await api.post("/api/v1/templates", content=b"{not json", headers=ALICE)
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"
    r = await api.post("/api/v1/templates", content=b"\xff\xfe", headers=ALICE)
    assert r.status_code == 400
    big = json.dumps({"spec": {"name": "x", "description": "y" * 1_100_000}})
    r = await api.post("/api/v1/templates", content=big, headers=ALICE)
    assert r.status_code == 413


async def test_run_from_template_watch_and_list(api, tmp_path):
    repo = steps_repo(tmp_path)
    await api.post("/api/v1/templates", json={"spec": spec_for(repo, "apirun")}, headers=ALICE)
    r = await api.post(
        "/api/v1/runs", json={"template": "apirun", "parameters": {"n": 4}}, headers=ALICE
    )
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["dag"] == "apirun" and run["template_version"] == 1 and run["owner"] == "alice"
    assert run["links"]["temporal"].endswith(f"/workflows/{run['id']}")

    events = []
    async with api.stream("GET", f"/api/v1/runs/{run['id']}/events", headers=ALICE) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
    assert events[0] == "progress" and events[-1] == "end"

    done = (await api.get(f"/api/v1/runs/{run['id']}", headers=ALICE)).json()
    assert done["status"] == "succeeded"
    assert done["progress"]["nodes"]["copy"]["partitions"] == ["succeeded", "succeeded"]
    assert done["mlflow_run_id"] and done["links"]["mlflow"].endswith(done["mlflow_run_id"])

    for _ in range(50):  # visibility lags a little behind
        listed = (
            await api.get(
                "/api/v1/runs", params={"template": "apirun", "status": "succeeded"}, headers=ALICE
            )
        ).json()
        if listed["items"]:
            break
        await asyncio.sleep(0.2)
    assert [x["id"] for x in listed["items"]] == [run["id"]]

    r = await api.post(
        "/api/v1/runs", json={"template": "apirun", "parameters": {"m": 1}}, headers=ALICE
    )
    assert r.status_code == 422 and r.json()["problems"][0]["path"] == "parameters.m"


async def test_cancel_an_inline_spec_run(api, tmp_path):
    repo = steps_repo(tmp_path)
    spec = {"name": "apicancel", "nodes": [node("s", repo, "sleep", parameters={"seconds": 120})]}
    run = (await api.post("/api/v1/runs", json={"spec": spec}, headers=ALICE)).json()
    for _ in range(100):
        got = (await api.get(f"/api/v1/runs/{run['id']}", headers=ALICE)).json()
        if got["progress"] and got["progress"]["nodes"]["s"]["partitions"] == ["running"]:
            break
        await asyncio.sleep(0.2)
    r = await api.post(f"/api/v1/runs/{run['id']}/cancel", headers=ALICE)
    assert r.status_code == 202
    for _ in range(100):
        got = (await api.get(f"/api/v1/runs/{run['id']}", headers=ALICE)).json()
        if got["status"] != "running":
            break
        await asyncio.sleep(0.2)
    assert got["status"] == "cancelled"
    assert got["progress"]["nodes"]["s"]["state"] == "cancelled"


async def test_temporal_unreachable_is_a_503(settings, tmp_path):
    from parallels.stack import free_port

    s = settings.model_copy(
        update={"api_open": True, "temporal_address": f"127.0.0.1:{free_port()}"}
    )
    app = create_app(s, store=TemplateStore(f"sqlite:///{tmp_path / 's.db'}"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as http:
        r = await http.get("/api/v1/runs")
    assert r.status_code == 503 and "unreachable" in r.json()["message"]


def test_no_tokens_and_not_open_refuses_to_start(settings, tmp_path):
    with pytest.raises(ValueError, match="no API tokens configured"):
        create_app(settings, store=TemplateStore(f"sqlite:///{tmp_path / 's.db'}"))


def test_store_survives_reopening(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first = TemplateStore(url)
    first.create("a", {"name": "a"}, "alice")
    first.update("a", {"name": "a", "v": 2}, "bob")
    first.engine.dispose()
    again = TemplateStore(url)  # runs the migrations again: nothing lost
    assert [t.owner for t in again.versions("a")] == ["alice", "bob"]


async def _wait_done(api, run_id):
    for _ in range(300):
        got = (await api.get(f"/api/v1/runs/{run_id}", headers=ALICE)).json()
        if got["status"] != "running":
            return got
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} did not end")


async def test_retry_reuses_nodes_that_succeeded(api, settings, tmp_path):
    from tests.integration.helpers import by_kind, runs_of

    repo = steps_repo(tmp_path)
    ledger, markers = tmp_path / "ledger", tmp_path / "markers"
    markers.mkdir()
    spec = {"name": "retryme", "nodes": [
        node("a", repo, "emit", parameters={"n": 3}),
        node("b", repo, "copy", parallelism=3, parameters={"tag": "b", "ledger": str(ledger)},
             inputs=[{"name": "d", "source": {"node": "a"}, "partition": "by_file"}]),
        node("c", repo, "flaky", depends_on=["b"], parameters={"markers": str(markers)}),
        node("d", repo, "copy", parameters={"tag": "d", "ledger": str(ledger)},
             inputs=[{"name": "fromb", "source": {"node": "b"}}], depends_on=["c"]),
    ]}  # fmt: skip
    first = (await api.post("/api/v1/runs", json={"spec": spec}, headers=ALICE)).json()
    done = await _wait_done(api, first["id"])
    assert done["status"] == "failed"
    assert {n: p["state"] for n, p in done["progress"]["nodes"].items()} == {
        "a": "succeeded",
        "b": "succeeded",
        "c": "failed",
        "d": "skipped",
    }

    r = await api.post(f"/api/v1/runs/{first['id']}/retry", headers=ALICE)
    assert r.status_code == 201, r.text
    retry = r.json()
    assert retry["retry_of"] == first["id"] and retry["id"] != first["id"]
    done2 = await _wait_done(api, retry["id"])
    assert done2["status"] == "succeeded", done2
    nodes = done2["progress"]["nodes"]
    assert nodes["b"]["node_run_id"] == done["progress"]["nodes"]["b"]["node_run_id"]  # reused

    events = [line.split()[:3] for line in ledger.read_text().splitlines()]
    assert sum(1 for tag, _, ev in events if tag == "b" and ev == "start") == 3  # b ran once
    assert sum(1 for tag, _, ev in events if tag == "d" and ev == "start") == 1
    retry_parts = by_kind(runs_of(settings, retry["id"]), "partition")
    assert sorted(p.data.tags["parallels.node"] for p in retry_parts) == ["c", "d"]
    # d read b's outputs from the first run: all 3 files arrived.
    from mlflow.tracking import MlflowClient

    d_run = next(p for p in retry_parts if p.data.tags["parallels.node"] == "d")
    assert (
        len(MlflowClient(settings.mlflow_tracking_uri).list_artifacts(d_run.info.run_id, "output"))
        == 3
    )

    again = await api.post(f"/api/v1/runs/{retry['id']}/retry", headers=ALICE)
    assert again.status_code == 409 and "succeeded" in again.json()["message"]


async def test_clusters_report_whether_a_worker_polls(client, settings, worker, tmp_path):
    async with api_for(client, settings, tmp_path, clusters="local,gpu-onprem") as http:
        for _ in range(50):  # a just-started worker's pollers register within a second or so
            body = (await http.get("/api/v1/clusters", headers=ALICE)).json()
            local = next(c for c in body["items"] if c["name"] == "local")
            if local["polling"] and body["control"]["polling"]:
                break
            await asyncio.sleep(0.2)
    assert body["control"]["polling"] is True
    assert body["control"]["task_queue"] == settings.task_queue
    by_name = {c["name"]: c for c in body["items"]}
    assert by_name["local"]["polling"] is True and by_name["local"]["workers"] >= 1
    assert by_name["local"]["task_queue"] == f"{settings.task_queue}-local"
    assert by_name["gpu-onprem"] == {
        "name": "gpu-onprem",
        "task_queue": f"{settings.task_queue}-gpu-onprem",
        "workers": 0,
        "polling": False,
    }


async def test_unknown_cluster_is_refused_and_an_unserved_one_fails_with_the_fix(
    client, settings, tmp_path
):
    s = settings.model_copy(update={"cluster_wait_seconds": 3})
    repo = steps_repo(tmp_path)
    spec = {"name": "far", "nodes": [node("a", repo, "emit", cluster="gpu-onprem")]}
    async with (
        worker_mod.running(worker_mod.build_workers(client, s)),
        api_for(client, s, tmp_path, clusters="local,gpu-onprem") as http,
    ):
        typo = {"name": "far", "nodes": [{**spec["nodes"][0], "cluster": "gpu-onprim"}]}
        for path in ("/api/v1/runs", "/api/v1/templates/validate"):
            r = await http.post(path, json={"spec": typo}, headers=ALICE)
            assert r.status_code == 422, r.text
            [problem] = r.json()["problems"]
            assert problem["path"] == "nodes[0].cluster"
            assert "did you mean 'gpu-onprem'" in problem["message"]

        # Known, but no worker serves it: the run says so instead of waiting forever.
        r = await http.post("/api/v1/runs", json={"spec": spec}, headers=ALICE)
        assert r.status_code == 201, r.text
        run = await wait_run(http, r.json()["id"], timeout=60)
    assert run["status"] == "failed", run
    error = run["progress"]["error"]
    assert "no worker serves cluster 'gpu-onprem'" in error, error
    assert "parallels worker --cluster gpu-onprem" in error


async def test_users_see_and_cancel_only_their_own_unless_admin(api, tmp_path):
    repo = steps_repo(tmp_path)
    t = "/api/v1/templates"
    assert (
        await api.post(t, json={"spec": spec_for(repo, name="alices")}, headers=ALICE)
    ).status_code == 201
    assert (
        await api.post(t, json={"spec": spec_for(repo, name="bobs")}, headers=BOB)
    ).status_code == 201
    # Someone else's template does not exist for you; an admin sees every one.
    assert [x["name"] for x in (await api.get(t, headers=BOB)).json()["items"]] == ["bobs"]
    assert (await api.get(t, headers=BOB)).json()["total"] == 1
    assert {x["name"] for x in (await api.get(t, headers=ROOT)).json()["items"]} >= {
        "alices",
        "bobs",
    }
    for method, path, body in [
        ("GET", f"{t}/alices", None),
        ("GET", f"{t}/alices/versions", None),
        ("PUT", f"{t}/alices", {"spec": spec_for(repo, name="alices")}),
        ("DELETE", f"{t}/alices", None),
        ("POST", "/api/v1/runs", {"template": "alices"}),
    ]:
        r = await api.request(method, path, json=body, headers=BOB)
        assert r.status_code == 404, (method, path, r.text)
        assert "alices" in r.json()["message"]
    assert (await api.get(f"{t}/alices", headers=ROOT)).status_code == 200
    # Names are global: Bob cannot take Alice's.
    r = await api.post(t, json={"spec": spec_for(repo, name="alices")}, headers=BOB)
    assert r.status_code == 409

    spec = {"name": "alicesleeps", "nodes": [node("s", repo, "sleep", parameters={"seconds": 120})]}
    run = (await api.post("/api/v1/runs", json={"spec": spec}, headers=ALICE)).json()
    rid = run["id"]
    assert run["owner"] == "alice"

    async def listed(headers):
        r = await api.get("/api/v1/runs", params={"template": "alicesleeps"}, headers=headers)
        return [x["id"] for x in r.json()["items"]]

    for _ in range(50):  # visibility lags a moment behind the start
        if await listed(ALICE):
            break
        await asyncio.sleep(0.2)
    assert await listed(ALICE) == [rid] and await listed(ROOT) == [rid]
    assert await listed(BOB) == []
    for method, path in [("GET", ""), ("POST", "/cancel"), ("POST", "/retry"), ("GET", "/events")]:
        r = await api.request(method, f"/api/v1/runs/{rid}{path}", headers=BOB)
        assert r.status_code == 404, (method, path, r.text)
    assert (await api.get(f"/api/v1/runs/{rid}", headers=BOB)).json()["error"] == "not_found"
    # An admin may cancel anyone's run.
    assert (await api.post(f"/api/v1/runs/{rid}/cancel", headers=ROOT)).status_code == 202
    assert (await wait_run(api, rid))["status"] == "cancelled"


async def test_cors_only_for_configured_origins(client, settings, tmp_path):
    ok, other = "https://ml.example.com", "https://evil.example.com"
    async with api_for(client, settings, tmp_path, api_cors_origins=ok) as http:
        pre = {"Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization,content-type"}  # fmt: skip
        r = await http.options("/api/v1/templates", headers={"Origin": ok, **pre})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ok
        r = await http.options("/api/v1/templates", headers={"Origin": other, **pre})
        assert "access-control-allow-origin" not in r.headers
        r = await http.get("/api/v1/templates", headers={"Origin": ok, **ALICE})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ok
        r = await http.get("/api/v1/templates", headers={"Origin": other, **ALICE})
        assert "access-control-allow-origin" not in r.headers
        # CORS opens nothing: a cross-origin call still needs a token.
        r = await http.get("/api/v1/templates", headers={"Origin": ok})
        assert r.status_code == 401
    async with api_for(client, settings, tmp_path) as http:  # the default: no origin at all
        r = await http.get("/api/v1/templates", headers={"Origin": ok, **ALICE})
        assert "access-control-allow-origin" not in r.headers
