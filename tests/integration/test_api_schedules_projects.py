"""Schedules (Temporal Schedules) and single-project runs through the API, on real servers."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from tests.integration.helpers import ALICE, spec_for, steps_repo, wait_for, wait_run


async def test_schedule_lifecycle_and_a_triggered_run(api, tmp_path):
    repo = steps_repo(tmp_path)
    assert (
        await api.post("/api/v1/templates", json={"spec": spec_for(repo, "sched")}, headers=ALICE)
    ).status_code == 201
    body = {"id": "nightly", "template": "sched", "parameters": {"n": 2}, "every": "1h"}
    r = await api.post("/api/v1/schedules", json=body, headers=ALICE)
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["template"] == "sched" and s["version"] == 1 and s["owner"] == "alice"
    assert s["every"] == "1h" and s["paused"] is False and len(s["next_runs"]) >= 1

    r = await api.post("/api/v1/schedules", json=body, headers=ALICE)
    assert r.status_code == 409 and "already exists" in r.json()["message"]

    assert (await api.post("/api/v1/schedules/nightly/trigger", headers=ALICE)).status_code == 202

    async def started():
        got = (await api.get("/api/v1/schedules/nightly", headers=ALICE)).json()
        return got["recent_runs"] or None

    [run_id] = await wait_for(started)
    assert run_id.startswith("nightly-")
    run = await wait_run(api, run_id)
    assert run["status"] == "succeeded" and run["owner"] == "alice" and run["dag"] == "sched"
    assert run["template_version"] == 1
    assert run["progress"]["nodes"]["copy"]["partitions"] == ["succeeded", "succeeded"]
    listed = (await api.get("/api/v1/runs?template=sched", headers=ALICE)).json()["items"]
    assert run_id in [x["id"] for x in listed]

    r = await api.post("/api/v1/schedules/nightly/pause", json={"note": "holiday"}, headers=ALICE)
    assert r.status_code == 200 and r.json()["paused"] is True and r.json()["note"] == "holiday"
    r = await api.post("/api/v1/schedules/nightly/unpause", json={}, headers=ALICE)
    assert r.status_code == 200 and r.json()["paused"] is False

    async def listed_schedule():
        items = (await api.get("/api/v1/schedules?template=sched", headers=ALICE)).json()["items"]
        return [i["id"] for i in items] or None

    assert await wait_for(listed_schedule) == ["nightly"]
    assert (await api.delete("/api/v1/schedules/nightly", headers=ALICE)).status_code == 204
    r = await api.get("/api/v1/schedules/nightly", headers=ALICE)
    assert r.status_code == 404 and "not found" in r.json()["message"]


async def test_schedule_bad_input(api, tmp_path):
    repo = steps_repo(tmp_path)
    await api.post("/api/v1/templates", json={"spec": spec_for(repo, "sched2")}, headers=ALICE)
    cases = [
        ({"id": "a", "template": "sched2"}, 422, "exactly one of 'cron'"),
        (
            {"id": "a", "template": "sched2", "every": "1h", "cron": ["0 3 * * *"]},
            422,
            "exactly one",
        ),
        ({"id": "a", "template": "sched2", "every": "2s"}, 422, "at least 10s"),
        ({"id": "a", "template": "sched2", "every": "soon"}, 422, "invalid duration"),
        ({"id": "a", "template": "sched2", "cron": ["every day"]}, 422, "5 fields"),
        ({"id": "a", "template": "sched2", "cron": ["99 99 * * *"]}, 422, "Temporal"),
        ({"id": "Bad Id", "template": "sched2", "every": "1h"}, 422, "id"),
        ({"id": "a", "template": "missing", "every": "1h"}, 404, "template 'missing' not found"),
        ({"id": "a", "template": "sched2", "every": "1h", "parameters": {"zzz": 1}}, 422, "zzz"),
    ]
    for body, status, text in cases:
        r = await api.post("/api/v1/schedules", json=body, headers=ALICE)
        assert r.status_code == status, (body, r.text)
        assert text in r.text, (body, r.text)
    for path in ("/api/v1/schedules/none", "/api/v1/schedules/none/trigger"):
        r = await (
            api.get(path, headers=ALICE) if path.endswith("none") else api.post(path, headers=ALICE)
        )
        assert r.status_code == 404


async def test_single_project_run_logs_into_the_run_it_returns(api, settings, tmp_path):
    repo = steps_repo(tmp_path)
    body = {"uri": str(repo), "entry_point": "emit", "parameters": {"n": 4}, "env_manager": "local"}
    r = await api.post("/api/v1/project-runs", json=body, headers=ALICE)
    assert r.status_code == 201, r.text
    started = r.json()
    mlflow_run = started["project_run_id"]
    assert len(mlflow_run) == 32 and started["dag"] == "steps-repo"
    run = await wait_run(api, started["id"])
    assert run["status"] == "succeeded", run
    assert run["project_run_id"] == mlflow_run

    mlflow = MlflowClient(settings.mlflow_tracking_uri)
    got = mlflow.get_run(mlflow_run)
    assert got.info.status == "FINISHED"
    assert got.data.params["n"] == "4"
    assert got.data.tags["mlflow.project.entryPoint"] == "emit"
    assert got.data.tags["mlflow.user"] == "alice"
    assert got.data.tags["parallels.kind"] == "partition"
    node_run = mlflow.get_run(got.data.tags["mlflow.parentRunId"])
    assert node_run.data.tags["parallels.kind"] == "node"
    outputs = [f.path for f in mlflow.list_artifacts(mlflow_run, "output")]
    assert len(outputs) == 4, outputs


async def test_single_project_run_into_a_given_run_and_its_failures(api, settings, tmp_path):
    repo = steps_repo(tmp_path)
    mlflow = MlflowClient(settings.mlflow_tracking_uri)
    exp = mlflow.create_experiment("given-run")
    given = mlflow.create_run(exp, run_name="mine").info.run_id
    body = {
        "uri": str(repo),
        "entry_point": "fail",
        "parameters": {"code": 7},
        "env_manager": "local",
        "experiment": "given-run",
        "mlflow_run_id": given,
    }
    r = await api.post("/api/v1/project-runs", json=body, headers=ALICE)
    assert r.status_code == 201, r.text
    run = await wait_run(api, r.json()["id"])
    assert run["status"] == "failed" and "exit" in run["progress"]["error"].lower(), run
    assert mlflow.get_run(given).info.status == "FAILED"

    r = await api.post(
        "/api/v1/project-runs",
        json={**body, "entry_point": "nope", "mlflow_run_id": None},
        headers=ALICE,
    )
    assert r.status_code == 201
    run = await wait_run(api, r.json()["id"])
    assert run["status"] == "failed" and "nope" in run["progress"]["error"], run

    for bad, text in [
        ({"uri": ""}, "uri"),
        ({"uri": "x", "mlflow_run_id": "not-a-run"}, "mlflow_run_id"),
        ({"uri": "x", "cluster": "Bad Cluster"}, "cluster"),
        ({"uri": "x", "timeout": "whenever"}, "invalid duration"),
        ({"uri": "x", "subdirectory": "../up"}, "relative path"),
    ]:
        r = await api.post("/api/v1/project-runs", json=bad, headers=ALICE)
        assert r.status_code == 422, (bad, r.text)
        assert text in r.text, (bad, r.text)
