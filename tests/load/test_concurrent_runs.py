"""50 DAG runs at once on one worker: all complete, none lost, and the API keeps answering.

The API latency under this load is printed (and recorded in docs/reliability.md), not asserted:
speed targets live in benchmarks/."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.project import faulty_repo
from tests.integration.helpers import ALICE, node

RUNS = 50
# 600 partitions through one worker on 2 cores: about 4-5 minutes, more on a busy machine. The
# bound is the same as the wait for the runs below, not the suite's default 300 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


async def test_fifty_concurrent_runs_all_complete_and_the_api_stays_responsive(
    api, client, settings, tmp_path
):
    repo = faulty_repo(tmp_path)
    nap = {"seconds": 0, "ledger": ""}
    spec = {
        "name": "load",
        "nodes": [
            node("a", repo, "nap", parallelism=4, parameters=nap),
            node("b", repo, "nap", parallelism=4, parameters=nap,
                 inputs=[{"name": "a", "source": {"node": "a"}, "partition": "by_file"}]),
            node("c", repo, "nap", parallelism=4, parameters=nap, depends_on=["a"]),
        ],
    }  # fmt: skip
    assert (
        await api.post("/api/v1/templates", json={"spec": spec}, headers=ALICE)
    ).status_code == 201

    started = await asyncio.gather(
        *(api.post("/api/v1/runs", json={"template": "load"}, headers=ALICE) for _ in range(RUNS))
    )
    assert [r.status_code for r in started] == [201] * RUNS
    ids = [r.json()["id"] for r in started]
    assert len(set(ids)) == RUNS

    latencies: list[float] = []
    errors: list[int] = []
    stop = asyncio.Event()

    async def poke() -> None:  # a user clicking around while the runs go
        i = 0
        while not stop.is_set():
            url = f"/api/v1/runs/{ids[i % RUNS]}" if i % 2 else "/api/v1/templates"
            t0 = time.perf_counter()
            r = await api.get(url, headers=ALICE)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors.append(r.status_code)
            i += 1
            await asyncio.sleep(0.05)

    pokers = [asyncio.create_task(poke()) for _ in range(2)]
    t0 = time.perf_counter()
    try:
        handles = [client.get_workflow_handle(i) for i in ids]
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 900)
    finally:
        stop.set()
        await asyncio.gather(*pokers)
    took = time.perf_counter() - t0
    statuses = [r["status"] if isinstance(r, dict) else r.status for r in results]
    assert statuses == ["succeeded"] * RUNS
    listed = (
        await api.get("/api/v1/runs", params={"template": "load", "limit": 500}, headers=ALICE)
    ).json()
    assert {r["id"] for r in listed["items"]} == set(ids)  # none lost
    assert not errors, errors
    lat = sorted(latencies)
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"\n{RUNS} runs x 3 nodes x 4 partitions in {took:.0f} s; API during load: "
          f"{len(lat)} requests, p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")  # fmt: skip
