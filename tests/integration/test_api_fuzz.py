"""Schema-driven fuzz of the API against its own OpenAPI document (schemathesis).

The API runs as a real `parallels api` process on the session's Temporal and MLflow servers;
every generated request must get a documented status, no 500, and an answer that matches the
documented schema. No worker polls this API's task queue, so runs it starts stay queued.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from api.app import create_app
from api.store import TemplateStore
from parallels.settings import Settings
from parallels.stack import free_port

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def api_url(base_settings, tmp_path_factory):
    port = free_port()
    state = tmp_path_factory.mktemp("fuzz")
    env = {
        **os.environ,
        "PARALLELS_STATE_DIR": str(state),
        "PARALLELS_TEMPORAL_ADDRESS": base_settings.temporal_address,
        "PARALLELS_MLFLOW_TRACKING_URI": base_settings.mlflow_tracking_uri,
        "PARALLELS_API_PORT": str(port),
        "PARALLELS_API_TOKENS": f"{TOKEN}:fuzzer",
        "PARALLELS_TASK_QUEUE": f"fuzz-{uuid.uuid4().hex[:8]}",
    }
    log = (state / "api.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "parallels", "api"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (state / "api.log").read_text()
            time.sleep(0.1)
        # Something to find: a template the generated names may or may not hit.
        spec = {"name": "fuzzed", "nodes": [{"id": "a", "project": {"uri": "/nonexistent"}}]}
        httpx.post(f"{url}/api/v1/templates", json={"spec": spec}, headers=AUTH).raise_for_status()
        assert httpx.get(f"{url}/api/v1/openapi.json").json() == DOCUMENT
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        errors = [ln for ln in (state / "api.log").read_text().splitlines() if "Traceback" in ln]
        assert not errors, "the API logged unexpected errors; see its log"


def _document():
    # Built from the same code the served API runs (the fixture checks they are equal); loaded
    # at import because schemathesis' lazy fixture loader does not support pytest 9.
    with tempfile.TemporaryDirectory() as d:
        s = Settings(state_dir=Path(d), api_tokens=f"{TOKEN}:fuzzer")
        app = create_app(s, store=TemplateStore(f"sqlite:///{Path(d) / 'doc.db'}"))
        doc = app.state.openapi
        app.state.openapi = None
        return doc


DOCUMENT = _document()
# Schemathesis' default list of "rejected" statuses, plus 413: a negative case at a maxItems
# boundary (501 nodes of 2 KB URIs) is larger than the API's body limit, and 413 is the right
# answer to that, not an acceptance.
REJECTED = [
    "400",
    "401",
    "403",
    "404",
    "405",
    "406",
    "409",
    "413",
    "415",
    "422",
    "428",
    "429",
    "5xx",
]
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REJECTED}}}
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


@schema.auth()
class BearerToken:
    """Declared as auth, so schemathesis knows every request carries a valid token."""

    def get(self, case, context):
        return TOKEN

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_matches_its_openapi_document(case, api_url):
    # Not positive_data_acceptance: a DAG's graph rules (acyclic, references that exist, known
    # parameters) are beyond JSON Schema, so a schema-valid spec can rightly get a 422.
    case.call_and_validate(
        base_url=api_url,
        timeout=30,
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
