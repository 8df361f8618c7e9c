"""Fixtures of the integration tests (the session servers live in tests/conftest.py)."""

from __future__ import annotations

import pytest_asyncio

from tests.integration.helpers import api_for


@pytest_asyncio.fixture
async def api(client, settings, tmp_path, worker):
    async with api_for(client, settings, tmp_path) as http:
        yield http
