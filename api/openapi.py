"""Endpoints declared once, with the pydantic models of their bodies and answers, so the served
OpenAPI document is generated from the same models that validate requests (and can be fuzzed)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.errors import ApiError

Handler = Callable[[Request], Awaitable[Response]]
REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Query:
    name: str
    schema: Mapping[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    #: status -> (description, model of the JSON answer or None for no/opaque body)
    responses: Mapping[int, tuple[str, type[BaseModel] | None]] = field(default_factory=dict)
    query: Sequence[Query] = ()
    media_type: str = "application/json"


def routes(endpoints: Sequence[Endpoint]) -> list[Route]:
    """One route per path serving all its methods, so a 405 lists every allowed method."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for e in endpoints:
        by_path.setdefault(e.path, {})[e.method] = e
    found = []
    for path, methods in by_path.items():

        async def dispatch(request: Request, methods: dict[str, Endpoint] = methods) -> Response:
            e = methods["GET" if request.method == "HEAD" else request.method]
            known = {q.name for q in e.query}
            unknown = sorted(set(request.query_params) - known)
            if unknown:  # a typo like ?stauts=failed must not silently list everything
                takes = ", ".join(sorted(known)) or "none"
                raise ApiError(
                    422,
                    "invalid_request",
                    f"unknown query parameter '{unknown[0]}' (this endpoint takes: {takes})",
                )
            return await e.handler(request)

        found.append(Route(path, dispatch, methods=list(methods)))
    return found


def document(
    endpoints: Sequence[Endpoint],
    *,
    title: str,
    version: str,
    error: type[BaseModel],
    shared: Sequence[type[BaseModel]] = (),
) -> dict[str, Any]:
    """`shared`: models that fields name with an `x-schema` marker instead of nesting them
    (pydantic cannot emit a `$ref` to a model it does not know)."""
    components: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        schema = _named_refs(model.model_json_schema(ref_template=REF))
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
        return {"$ref": REF.format(model=model.__name__)}

    for model in shared:
        ref(model)
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        op: dict[str, Any] = {
            "summary": e.summary,
            "operationId": e.handler.__name__,
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in re.findall(r"{(\w+)}", e.path)
            ]
            + [
                {"name": q.name, "in": "query", "required": False, "schema": dict(q.schema)}
                | ({"description": q.description} if q.description else {})
                for q in e.query
            ],
            "responses": {},
        }
        if e.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(e.body)}},
            }
        answers = dict(e.responses)
        answers.setdefault(401, ("missing or invalid bearer token", error))
        if e.body is not None:
            answers.setdefault(400, ("the body is not JSON", error))
            answers.setdefault(413, ("the body is too large", error))
            answers.setdefault(422, ("invalid request, every problem with its path", error))
        else:
            answers.setdefault(422, ("invalid or unknown query parameter", error))
        answers.setdefault(503, ("Temporal or the template store is unreachable", error))
        for status, (description, answer_model) in sorted(answers.items()):
            answer: dict[str, Any] = {"description": description}
            if answer_model is not None:
                media = e.media_type if status < 300 else "application/json"
                answer["content"] = {media: {"schema": ref(answer_model)}}
            op["responses"][str(status)] = answer
        paths.setdefault(e.path, {})[e.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _named_refs(node: Any) -> Any:
    if isinstance(node, dict):
        if "x-schema" in node:
            return {"$ref": REF.format(model=node["x-schema"])}
        return {k: _named_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_named_refs(v) for v in node]
    return node
