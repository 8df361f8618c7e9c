"""Every invalid document and payload of the corpus is refused with its path and reason: by
`parallels dag validate` (non-zero exit) and by the API (a 4xx, never a 500)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from parallels.cli import app
from tests.bad_input.corpus import PAYLOADS, SPECS
from tests.integration.helpers import ALICE

CASES = [pytest.param(doc, path, reason, id=cid) for cid, doc, path, reason in SPECS]


def test_the_corpus_is_large_enough():
    assert len(SPECS) + len(PAYLOADS) >= 50
    assert len({c[0] for c in SPECS}) == len(SPECS)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _as_file(doc: Any, tmp_path: Path) -> Path:
    f = tmp_path / "dag.yaml"
    f.write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    return f


@pytest.mark.parametrize(("doc", "path", "reason"), CASES)
def test_cli_validate_refuses_it_with_path_and_reason(doc, path, reason, tmp_path):
    result = CliRunner().invoke(app, ["dag", "validate", str(_as_file(doc, tmp_path))])
    assert result.exit_code == 2, result.output
    out = _flat(result.output)
    assert "invalid DAG spec" in out and _flat(reason) in out, out[:2000]
    if path:
        assert f"{path}" in out, out[:2000]


@pytest.mark.parametrize(("doc", "path", "reason"), CASES)
async def test_api_refuses_it_with_path_and_reason(api, doc, path, reason):
    if isinstance(doc, bytes):
        # The API takes JSON: a document that is not JSON is a 400 (413 if too large; an empty
        # body is a 422 for the missing `spec`), said plainly.
        r = await api.post("/api/v1/templates/validate", content=doc, headers=ALICE)
        assert r.status_code in (400, 413, 422), r.text
        assert r.json()["message"]
        return
    r = await api.post("/api/v1/templates/validate", json={"spec": doc}, headers=ALICE)
    assert r.status_code in (413, 422), r.text
    body = r.json()
    if not isinstance(doc, dict):  # the body's own schema refuses it: `spec` is an object
        assert body["problems"] == [{"path": "spec", "message": "Input should be an object"}]
    elif r.status_code == 422:
        assert any(
            p["path"].startswith(path) and _flat(reason).lower() in _flat(p["message"]).lower()
            for p in body["problems"]
        ), body


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "reason"),
    [pytest.param(*c[1:], id=c[0]) for c in PAYLOADS],
)
async def test_api_payloads_get_a_precise_4xx(api, method, url, body, status, reason):
    kw: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    if body is None:
        kw = {}
    r = await api.request(method, url, headers={**ALICE, "Content-Type": "application/json"}, **kw)
    assert r.status_code == status, r.text
    data = r.json()
    text = (
        data["message"]
        + " "
        + " ".join(p["path"] + " " + p["message"] for p in data.get("problems") or [])
    )
    assert reason.lower() in text.lower(), data
