"""Slow and broken clients: a real API server keeps answering everyone else."""

from __future__ import annotations

import asyncio

import httpx

from tests.integration.helpers import ALICE, served_api


async def test_stalled_and_broken_clients_do_not_hang_the_api(client, settings, tmp_path):
    async with served_api(client, settings, tmp_path) as url:
        host, port = url.removeprefix("http://").split(":")
        stalled = []
        # 20 clients that send half a request line and stop, and 20 that promise a body and
        # send a few bytes of it.
        for i in range(40):
            reader, writer = await asyncio.open_connection(host, int(port))
            if i % 2:
                writer.write(b"GET /api/v1/templ")
            else:
                writer.write(
                    b"POST /api/v1/templates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token\r\n"
                    b'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"spec": '
                )
            await writer.drain()
            stalled.append(writer)
        # One that vanishes mid-body.
        _, gone = await asyncio.open_connection(host, int(port))
        gone.write(b"POST /api/v1/templates HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
        await gone.drain()
        gone.close()

        # Everyone else is served while 40 connections hang: a request that waited behind them
        # would hit the client's timeout and fail the test.
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            for _ in range(20):
                r = await http.get("/api/v1/templates", headers=ALICE)
                assert r.status_code == 200
            assert (await http.get("/health")).json() == {"status": "ok"}
        for w in stalled:
            w.close()
