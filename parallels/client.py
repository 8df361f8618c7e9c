"""A small typed client of the Parallels REST API (used by the CLI and the tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
from httpx_sse import connect_sse

from parallels.spec import Scalar, spec_digest


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.code = str(body.get("error", "error"))
        self.message = str(body.get("message", ""))
        self.problems: list[dict[str, str]] = body.get("problems", [])
        super().__init__(f"{status} {self.code}: {self.message}")


class ParallelsClient:
    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ParallelsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        r = self._http.request(method, f"/api/v1{path}", **kw)
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = {"error": "http_error", "message": r.text[:500]}
            raise ApiError(r.status_code, body)
        return r.json() if r.content else None

    # templates
    def validate(self, spec: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/templates/validate", json={"spec": spec}))

    def push(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Create the template, or save a new version if its content changed.

        The answer has `changed: False` when the latest version already holds this spec.
        """
        try:
            return {**self._call("POST", "/templates", json={"spec": spec}), "changed": True}
        except ApiError as e:
            if e.status != 409:
                raise
        latest = dict(self._call("GET", f"/templates/{spec['name']}"))
        if latest.get("digest") == spec_digest(spec):
            return {**latest, "changed": False}
        saved = self._call("PUT", f"/templates/{spec['name']}", json={"spec": spec})
        return {**saved, "changed": True}

    def templates(self, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        return dict(self._call("GET", "/templates", params={"offset": offset, "limit": limit}))

    def template(self, name: str, version: int | None = None) -> dict[str, Any]:
        params = {"version": version} if version else {}
        return dict(self._call("GET", f"/templates/{name}", params=params))

    def delete_template(self, name: str) -> None:
        self._call("DELETE", f"/templates/{name}")

    # runs
    def start(
        self,
        template: str | None = None,
        *,
        spec: dict[str, Any] | None = None,
        version: int | None = None,
        parameters: dict[str, Scalar] | None = None,
        run_name: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"parameters": parameters or {}}
        if template is not None:
            body["template"] = template
        if spec is not None:
            body["spec"] = spec
        if version is not None:
            body["version"] = version
        if run_name is not None:
            body["run_name"] = run_name
        return dict(self._call("POST", "/runs", json=body))

    def runs(self, template: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("template", template), ("status", status)) if v}
        return list(self._call("GET", "/runs", params=params)["items"])

    def run(self, run_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/runs/{run_id}"))

    def retry(self, run_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/runs/{run_id}/retry"))

    def cancel(self, run_id: str) -> None:
        self._call("POST", f"/runs/{run_id}/cancel")

    def events(self, run_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The run's server-sent events: ("progress", run) on every change, then ("end", ...)."""
        with connect_sse(self._http, "GET", f"/api/v1/runs/{run_id}/events", timeout=None) as es:
            if es.response.status_code >= 400:
                es.response.read()
                try:
                    body = es.response.json()
                except ValueError:
                    body = {"error": "http_error", "message": es.response.text[:500]}
                raise ApiError(es.response.status_code, body)
            for sse in es.iter_sse():
                yield sse.event, json.loads(sse.data)

    def start_project(self, uri: str, **fields: Any) -> dict[str, Any]:
        """Run one MLflow project entry point (fields as in POST /api/v1/project-runs)."""
        return dict(self._call("POST", "/project-runs", json={"uri": uri, **fields}))

    # schedules
    def create_schedule(self, schedule_id: str, template: str, **fields: Any) -> dict[str, Any]:
        body = {"id": schedule_id, "template": template, **fields}
        return dict(self._call("POST", "/schedules", json=body))

    def schedules(self, template: str | None = None) -> list[dict[str, Any]]:
        params = {"template": template} if template else {}
        return list(self._call("GET", "/schedules", params=params)["items"])

    def set_paused(self, schedule_id: str, paused: bool, note: str = "") -> dict[str, Any]:
        action = "pause" if paused else "unpause"
        return dict(self._call("POST", f"/schedules/{schedule_id}/{action}", json={"note": note}))

    def trigger(self, schedule_id: str) -> None:
        self._call("POST", f"/schedules/{schedule_id}/trigger")

    def delete_schedule(self, schedule_id: str) -> None:
        self._call("DELETE", f"/schedules/{schedule_id}")
