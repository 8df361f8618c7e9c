"""Periodic runs of a template, kept as Temporal Schedules (Temporal is the only run state).

A schedule snapshots the template version it was made from: a later save of the template does
not change what a schedule runs (delete and re-create it to move it to a new version).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, model_validator
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleListActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from api.models import Parameters, StrictBody
from parallels.errors import ParallelsError
from parallels.models import DagRunInput
from parallels.settings import Settings
from parallels.spec import ID_PATTERN, parse_duration
from workflows.dag import DAG_ATTR, OWNER_ATTR

MIN_INTERVAL = 10.0  # seconds: anything faster is a load test, not a schedule


class ScheduleBody(StrictBody):
    id: str = Field(pattern=ID_PATTERN, description="unique name of the schedule")
    template: str = Field(min_length=1, max_length=128)
    version: int | None = Field(default=None, ge=1, description="default: the latest")
    parameters: Parameters
    cron: list[str] = Field(
        default_factory=list, max_length=10, description="cron expressions, e.g. '0 3 * * *'"
    )
    every: str | None = Field(default=None, description="an interval instead, e.g. '6h', '30m'")
    paused: bool = False
    note: str = Field(default="", max_length=500)
    run_name: str | None = Field(default=None, max_length=250)
    overlap: str = Field(
        default="skip",
        pattern="^(skip|buffer_one|allow_all|cancel_other)$",
        description="when a run is due while the last is still running",
    )

    @model_validator(mode="after")
    def _when(self) -> ScheduleBody:
        if bool(self.cron) == (self.every is not None):
            raise ValueError("give exactly one of 'cron' (a list) or 'every' (a duration)")
        if self.every is not None and parse_duration(self.every) < MIN_INTERVAL:
            raise ValueError(f"'every' must be at least {MIN_INTERVAL:g}s")
        for c in self.cron:
            if not 5 <= len(c.split()) <= 7 and not c.startswith("@"):
                raise ValueError(
                    f"cron expression {c!r} needs 5 fields (minute hour dom month dow)"
                )
        return self


class ScheduleOut(BaseModel):
    id: str
    template: str
    version: int
    owner: str | None
    cron: list[str]
    every: str | None
    paused: bool
    note: str
    overlap: str
    next_runs: list[datetime]
    recent_runs: list[str] = Field(description="ids of the most recent runs it started")


class ScheduleList(BaseModel):
    items: list[ScheduleOut]


class ScheduleNotFound(ParallelsError):
    pass


class ScheduleExists(ParallelsError):
    pass


class ScheduleService:
    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    async def create(
        self, body: ScheduleBody, spec: dict[str, Any], version: int, owner: str
    ) -> ScheduleOut:
        name = str(spec["name"])
        inp = DagRunInput(
            spec=spec,
            parameters=body.parameters,
            run_name=body.run_name,
            template_version=version,
            owner=owner,
        )
        attrs = TypedSearchAttributes([SearchAttributePair(DAG_ATTR, name)])
        # The runs a schedule starts belong to whoever made the schedule.
        run_attrs = TypedSearchAttributes(
            [SearchAttributePair(DAG_ATTR, name), SearchAttributePair(OWNER_ATTR, owner)]
        )
        action = ScheduleActionStartWorkflow(
            "DagRunWorkflow",
            inp,
            # Temporal appends the scheduled time, so every run has its own id.
            id=body.id,
            task_queue=self._settings.task_queue,
            memo={"owner": owner, "template_version": version, "schedule": body.id},
            typed_search_attributes=run_attrs,
        )
        spec_ = (
            ScheduleSpec(cron_expressions=body.cron)
            if body.cron
            else ScheduleSpec(
                intervals=[ScheduleIntervalSpec(every=timedelta(seconds=_every(body)))]
            )
        )
        schedule = Schedule(
            action=action,
            spec=spec_,
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy[body.overlap.upper()]),
            state=ScheduleState(paused=body.paused, note=body.note or None),
        )
        memo = {
            "template": name,
            "version": version,
            "owner": owner,
            "cron": body.cron,
            "every": body.every,
            "overlap": body.overlap,
        }
        try:
            await self._client.create_schedule(
                body.id, schedule, memo=memo, search_attributes=attrs
            )
        except ScheduleAlreadyRunningError:
            raise ScheduleExists(f"schedule '{body.id}' already exists") from None
        return await self.get(body.id)

    async def get(self, schedule_id: str) -> ScheduleOut:
        try:
            desc = await self._client.get_schedule_handle(schedule_id).describe()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                raise ScheduleNotFound(f"schedule '{schedule_id}' not found") from None
            raise
        memo = await desc.memo()
        if "template" not in memo:  # a schedule made by someone else in this namespace
            raise ScheduleNotFound(f"schedule '{schedule_id}' is not a Parallels schedule")
        recent = [
            getattr(a.action, "workflow_id", "")
            for a in desc.info.recent_actions
            if getattr(a.action, "workflow_id", "")
        ]
        return ScheduleOut(
            id=schedule_id,
            template=memo["template"],
            version=memo["version"],
            owner=memo.get("owner"),
            cron=memo.get("cron") or [],
            every=memo.get("every"),
            paused=desc.schedule.state.paused,
            note=desc.schedule.state.note or "",
            overlap=memo.get("overlap", "skip"),
            next_runs=list(desc.info.next_action_times[:5]),
            recent_runs=recent[-10:],
        )

    async def list(self, template: str | None, limit: int) -> list[ScheduleOut]:
        """Visibility finds the ids (eventually consistent); each is then described."""
        found: list[ScheduleOut] = []
        async for s in await self._client.list_schedules():
            action = s.schedule.action if s.schedule is not None else None
            if isinstance(action, ScheduleListActionStartWorkflow) and (
                action.workflow != "DagRunWorkflow"
            ):
                continue
            try:
                out = await self.get(s.id)
            except ScheduleNotFound:
                continue  # deleted since it was listed, or not ours
            if template is None or out.template == template:
                found.append(out)
            if len(found) >= limit:
                break
        return sorted(found, key=lambda o: o.id)

    async def set_paused(self, schedule_id: str, paused: bool, note: str) -> ScheduleOut:
        await self.get(schedule_id)
        handle = self._client.get_schedule_handle(schedule_id)
        if paused:
            await handle.pause(note=note or "paused through the Parallels API")
        else:
            await handle.unpause(note=note or "unpaused through the Parallels API")
        return await self.get(schedule_id)

    async def trigger(self, schedule_id: str) -> None:
        await self.get(schedule_id)
        await self._client.get_schedule_handle(schedule_id).trigger(
            overlap=ScheduleOverlapPolicy.ALLOW_ALL
        )

    async def delete(self, schedule_id: str) -> None:
        await self.get(schedule_id)
        await self._client.get_schedule_handle(schedule_id).delete()


def _every(body: ScheduleBody) -> float:
    assert body.every is not None
    return parse_duration(body.every)
