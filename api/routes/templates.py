"""Templates: versioned, immutable DAG specs in the SQL store."""

from __future__ import annotations

import asyncio
import functools

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.context import Context, json_of
from api.errors import ApiError
from api.models import Error, TemplateBody, TemplatePage, TemplateVersions, Validated
from api.openapi import Endpoint, Query
from api.specs import load_for
from api.store import Template

PAGING = (
    Query("offset", {"type": "integer", "minimum": 0, "maximum": 10**9}),
    Query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
)


def endpoints(ctx: Context) -> list[Endpoint]:
    store = ctx.templates

    async def validate_template(request: Request) -> Response:
        b = await ctx.body(request, TemplateBody)
        spec = load_for(ctx.settings, b.spec)
        return JSONResponse(json_of(Validated(valid=True, name=spec.name, nodes=len(spec.nodes))))

    async def create_template(request: Request) -> Response:
        b = await ctx.body(request, TemplateBody)
        spec = load_for(ctx.settings, b.spec)
        t = await asyncio.to_thread(store.create, spec.name, b.spec, ctx.user(request).name)
        return JSONResponse(t.model_dump(mode="json"), 201)

    async def list_templates(request: Request) -> Response:
        offset = ctx.integer(request, "offset", 0, 0, 10**9)
        limit = ctx.integer(request, "limit", 50, 1, 500)
        items, total = await asyncio.to_thread(
            functools.partial(store.list, offset, limit, viewer=ctx.viewer(request))
        )
        return JSONResponse(
            {"items": [t.model_dump(mode="json") for t in items], "total": total, "offset": offset}
        )

    async def get_template(request: Request) -> Response:
        version = ctx.integer(request, "version", None, 1, 10**9)
        t = await asyncio.to_thread(
            functools.partial(
                store.get, request.path_params["name"], version, viewer=ctx.viewer(request)
            )
        )
        return JSONResponse(t.model_dump(mode="json"))

    async def template_versions(request: Request) -> Response:
        items = await asyncio.to_thread(
            functools.partial(
                store.versions, request.path_params["name"], viewer=ctx.viewer(request)
            )
        )
        return JSONResponse({"items": [t.model_dump(mode="json") for t in items]})

    async def update_template(request: Request) -> Response:
        name = request.path_params["name"]
        b = await ctx.body(request, TemplateBody)
        spec = load_for(ctx.settings, b.spec)
        if spec.name != name:
            raise ApiError(422, "name_mismatch", f"spec name '{spec.name}' differs from '{name}'")
        user = ctx.user(request)
        t = await asyncio.to_thread(
            functools.partial(store.update, name, b.spec, user.name, viewer=ctx.viewer(request))
        )
        return JSONResponse(t.model_dump(mode="json"))

    async def delete_template(request: Request) -> Response:
        await asyncio.to_thread(
            functools.partial(store.delete, request.path_params["name"], viewer=ctx.viewer(request))
        )
        return Response(status_code=204)

    base = "/api/v1/templates"
    missing = (404, ("no such template or version", Error))
    return [
        Endpoint(
            "POST",
            f"{base}/validate",
            validate_template,
            "Validate a DAG spec without saving it",
            body=TemplateBody,
            responses={200: ("valid", Validated)},
        ),
        Endpoint(
            "POST",
            base,
            create_template,
            "Create a template (version 1)",
            body=TemplateBody,
            responses={
                201: ("created", Template),
                409: ("a template of that name exists", Error),
            },
        ),
        Endpoint(
            "GET",
            base,
            list_templates,
            "The latest version of every template, by name, paged",
            query=PAGING,
            responses={200: ("a page of templates", TemplatePage)},
        ),
        Endpoint(
            "GET",
            f"{base}/{{name}}",
            get_template,
            "A template: the latest version, or ?version=N",
            query=(Query("version", {"type": "integer", "minimum": 1}),),
            responses={200: ("the template", Template), 404: missing[1]},
        ),
        Endpoint(
            "PUT",
            f"{base}/{{name}}",
            update_template,
            "Save a new version of a template",
            body=TemplateBody,
            responses={
                200: ("the new version", Template),
                404: missing[1],
                409: ("another save won the race for this version; retry", Error),
            },
        ),
        Endpoint(
            "DELETE",
            f"{base}/{{name}}",
            delete_template,
            "Delete a template and all its versions",
            responses={204: ("deleted", None), 404: missing[1]},
        ),
        Endpoint(
            "GET",
            f"{base}/{{name}}/versions",
            template_versions,
            "Every version of a template",
            responses={200: ("all versions, oldest first", TemplateVersions), 404: missing[1]},
        ),
    ]
