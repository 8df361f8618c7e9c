"""What every route needs: settings, the template store, Temporal (connected on first use),
the caller, and body parsing with the size limit."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from temporalio.client import Client

from api.auth import User
from api.errors import ApiError
from api.mlflow_runs import MlflowRuns
from api.runs import RunService
from api.schedules import ScheduleService
from api.store import TemplateStore
from parallels.settings import Settings

M = TypeVar("M", bound=BaseModel)


class Context:
    def __init__(
        self,
        settings: Settings,
        templates: TemplateStore,
        temporal: Callable[[], Awaitable[Client]],
    ) -> None:
        self.settings = settings
        self.templates = templates
        self.mlflow = MlflowRuns(settings.mlflow_tracking_uri)
        self._connect = temporal
        self._client: Client | None = None

    async def client(self) -> Client:
        if self._client is None:
            try:
                self._client = await self._connect()
            except Exception as e:
                raise ApiError(
                    503,
                    "unavailable",
                    f"Temporal at {self.settings.temporal_address} unreachable: {e}",
                ) from e
        return self._client

    async def runs(self) -> RunService:
        return RunService(await self.client(), self.settings)

    async def schedules(self) -> ScheduleService:
        return ScheduleService(await self.client(), self.settings)

    async def body(self, request: Request, model: type[M]) -> M:
        raw = await request.body()
        if len(raw) > self.settings.api_max_body_bytes:
            raise ApiError(
                413, "too_large", f"request body over {self.settings.api_max_body_bytes} bytes"
            )
        try:
            json.loads(raw or b"null")  # not JSON at all: 400, before any field is looked at
        except RecursionError:
            raise ApiError(400, "bad_json", "request body nested too deeply") from None
        return model.model_validate_json(raw or b"null")

    @staticmethod
    def user(request: Request) -> User:
        found: User = request.state.user
        return found

    @staticmethod
    def viewer(request: Request) -> str | None:
        """Whose templates and runs the caller may see: their own, or everyone's (None) for an
        admin (and for everyone in open mode)."""
        user: User = request.state.user
        return None if user.admin else user.name

    @staticmethod
    def integer(request: Request, name: str, default: Any, lo: int, hi: int) -> Any:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(
                422, "invalid_request", f"query parameter '{name}' must be an integer"
            ) from None
        if not lo <= value <= hi:
            raise ApiError(
                422, "invalid_request", f"query parameter '{name}' must be in {lo}..{hi}"
            )
        return value


def json_of(model: BaseModel) -> Any:
    return model.model_dump(mode="json")
