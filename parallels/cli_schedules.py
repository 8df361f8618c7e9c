"""`parallels schedule ...`: periodic runs of a template, through the API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from parallels.cli_api import ApiUrl, Token, _call, _client

schedule_app = typer.Typer(
    no_args_is_help=True, help="Run a template periodically (cron or interval), via the API."
)


@schedule_app.command("create")
def create(
    schedule_id: Annotated[str, typer.Argument(help="a name for the schedule")],
    template: Annotated[str, typer.Argument(help="the template it runs")],
    cron: Annotated[list[str], typer.Option(help="cron expression, e.g. '0 3 * * *'")] = [],  # noqa: B006
    every: Annotated[str | None, typer.Option(help="an interval instead, e.g. 6h")] = None,
    param: Annotated[list[str], typer.Option("--param", "-p", help="name=value")] = [],  # noqa: B006
    version: Annotated[int | None, typer.Option(help="template version (default: latest)")] = None,
    paused: Annotated[bool, typer.Option(help="create it paused")] = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Create a schedule of a template version."""
    from parallels.cli import _parse_params, console

    fields: dict[str, object] = {"parameters": _parse_params(param), "paused": paused}
    if cron:
        fields["cron"] = cron
    if every:
        fields["every"] = every
    if version:
        fields["version"] = version
    with _client(api_url, token) as c:
        s = _call(lambda: c.create_schedule(schedule_id, template, **fields))
    nxt = s["next_runs"][0][:19] if s["next_runs"] else "-"
    console.print(f"created schedule {s['id']} of {s['template']} v{s['version']}; next {nxt}")


@schedule_app.command("list")
def list_(
    template: Annotated[str | None, typer.Option(help="only this template's")] = None,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """List schedules."""
    from parallels.cli import console

    with _client(api_url, token) as c:
        items = _call(lambda: c.schedules(template))
    table = Table("id", "template", "when", "state", "next run", "last run")
    for s in items:
        when = (s["every"] and f"every {s['every']}") or ", ".join(s["cron"])
        table.add_row(
            s["id"], f"{s['template']} v{s['version']}", when,
            "paused" if s["paused"] else "active",
            s["next_runs"][0][:19] if s["next_runs"] else "-",
            s["recent_runs"][-1] if s["recent_runs"] else "-",
        )  # fmt: skip
    console.print(table)


def _set(schedule_id: str, paused: bool, note: str, api_url: str | None, token: str | None) -> None:
    from parallels.cli import console

    with _client(api_url, token) as c:
        _call(lambda: c.set_paused(schedule_id, paused, note))
    console.print(f"{'paused' if paused else 'resumed'} {schedule_id}")


@schedule_app.command("pause")
def pause(schedule_id: str, note: str = "", api_url: ApiUrl = None, token: Token = None) -> None:
    """Pause a schedule."""
    _set(schedule_id, True, note, api_url, token)


@schedule_app.command("unpause")
def unpause(schedule_id: str, note: str = "", api_url: ApiUrl = None, token: Token = None) -> None:
    """Resume a paused schedule."""
    _set(schedule_id, False, note, api_url, token)


@schedule_app.command("trigger")
def trigger(schedule_id: str, api_url: ApiUrl = None, token: Token = None) -> None:
    """Start a run of the schedule now."""
    from parallels.cli import console

    with _client(api_url, token) as c:
        _call(lambda: c.trigger(schedule_id))
    console.print(f"triggered {schedule_id}")


@schedule_app.command("delete")
def delete(schedule_id: str, api_url: ApiUrl = None, token: Token = None) -> None:
    """Delete a schedule (the runs it started are kept)."""
    from parallels.cli import console

    with _client(api_url, token) as c:
        _call(lambda: c.delete_schedule(schedule_id))
    console.print(f"deleted {schedule_id}")
