"""The codec server the Temporal web console and `temporal --codec-endpoint` call to show
encrypted payloads in clear (POST /decode) and to encode input typed there (POST /encode).

It holds the keys, so it runs beside the workers, not on the internet: bind it to a private
address and let only the console's origin call it (codec_cors_origins).
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from parallels.codec import CodecKeyError

MAX_BODY = 4 * 1024 * 1024


def app(codec: PayloadCodec, cors_origins: Sequence[str] = ()) -> Starlette:
    async def handle(request: Request, encode: bool) -> Response:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return JSONResponse({"message": f"body over {MAX_BODY} bytes"}, 413)
        try:
            payloads = json_format.Parse(raw, Payloads())
        except json_format.ParseError as e:
            return JSONResponse({"message": f"not a Payloads JSON document: {e}"}, 400)
        try:
            out = await (codec.encode if encode else codec.decode)(payloads.payloads)
        except CodecKeyError as e:
            return JSONResponse({"message": str(e)}, 422)
        body = json_format.MessageToJson(Payloads(payloads=out))
        return Response(body, media_type="application/json")

    async def encode(request: Request) -> Response:
        return await handle(request, encode=True)

    async def decode(request: Request) -> Response:
        return await handle(request, encode=False)

    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["POST"],
            allow_headers=["content-type", "x-namespace", "authorization"],
            allow_credentials=True,
        )
    ]
    return Starlette(
        routes=[
            Route("/encode", encode, methods=["POST"]),
            Route("/decode", decode, methods=["POST"]),
        ],
        middleware=middleware,
    )
