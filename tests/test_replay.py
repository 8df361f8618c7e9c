"""Replay recorded histories: a workflow change that would break running DAGs fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_recorded():
    kinds = {p.name.split("__")[0] for p in HISTORIES}
    assert {
        "replay-fanout.json",
        "replay-failfast.json",
        "replay-cancelled.json",
        "replay-reuse.json",
        "replay-workercheck.json",  # nodes that check their cluster has a worker
    } <= kinds
    assert any("__" in p.name for p in HISTORIES)  # node workflows too


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path):
    history = WorkflowHistory.from_json(path.stem.replace("__", "/"), path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
