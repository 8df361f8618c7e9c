"""A DAG run with payload encryption on: it completes, Temporal's history holds only ciphertext,
and the codec server shows the payloads in clear to those who hold the keys."""

from __future__ import annotations

import base64
import json
import os

import httpx
from pydantic import SecretStr
from temporalio.client import Client

import worker as worker_mod
from parallels import codec_server
from parallels.codec import ENCODING
from parallels.temporal import connect, data_converter
from parallels.watch import start_dag
from tests.integration.helpers import node, steps_repo


async def test_encrypted_run_completes_and_its_history_is_ciphertext(client, settings, tmp_path):
    keys = base64.b64encode(os.urandom(32)).decode()
    s = settings.model_copy(update={"codec_keys": SecretStr(keys)})
    sealed_client = await connect(s)
    repo = steps_repo(tmp_path)
    secret = "s3cr3t-prefix-value"
    spec = {
        "name": "sealed",
        "nodes": [node("a", repo, "emit", parameters={"n": 2, "prefix": secret})],
    }
    async with worker_mod.running(worker_mod.build_workers(sealed_client, s)):
        handle = await start_dag(sealed_client, spec, task_queue=s.task_queue)
        result = await handle.result()
    assert result.status == "succeeded"

    # Read with a client that has no keys: the history is opaque.
    plain_client: Client = client
    history = await plain_client.get_workflow_handle(handle.id).fetch_history()
    raw = history.to_json()
    assert secret not in raw
    started = json.loads(raw)["events"][0]["workflowExecutionStartedEventAttributes"]
    [payload] = started["input"]["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == ENCODING

    # The codec server (what the web console calls) decodes it with the keys.
    codec = data_converter(s).payload_codec
    assert codec is not None
    app = codec_server.app(codec, ["http://localhost:8233"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://codec") as http:
        r = await http.post(
            "/decode",
            json={"payloads": [payload]},
            headers={"X-Namespace": "default", "Origin": "http://localhost:8233"},
        )
        assert r.status_code == 200, r.text
        assert r.headers["access-control-allow-origin"] == "http://localhost:8233"
        [decoded] = r.json()["payloads"]
        assert secret in base64.b64decode(decoded["data"]).decode()
        assert (await http.post("/decode", content=b"{nope")).status_code == 400
        other = await http.post(
            "/decode", json={"payloads": [payload]}, headers={"Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
