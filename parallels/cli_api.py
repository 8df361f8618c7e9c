"""CLI commands that talk to the REST API: `parallels dag push|list`, `parallels run ...`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from parallels.client import ApiError, ParallelsClient
from parallels.models import DagProgress
from parallels.settings import Settings
from parallels.watch import render

run_app = typer.Typer(
    no_args_is_help=True, help="Start, list, show and cancel DAG runs (via the API)."
)
T = TypeVar("T")

ApiUrl = Annotated[str | None, typer.Option("--api-url", help="default: PARALLELS_API_URL")]
Token = Annotated[str | None, typer.Option("--token", help="default: PARALLELS_API_TOKEN")]


def _client(api_url: str | None, token: str | None) -> ParallelsClient:
    s = Settings()
    return ParallelsClient(api_url or s.api_url, token or s.api_token)


def _call(fn: Callable[[], T]) -> T:
    from parallels.cli import err

    try:
        return fn()
    except ApiError as e:
        err.print(f"[red]{escape(e.message)}[/] ({e.status} {e.code})")
        for p in e.problems:
            err.print(f"  {p['path']}: {p['message']}", markup=False)
        raise typer.Exit(2 if 400 <= e.status < 500 else 1) from e
    except OSError as e:  # httpx connection errors are OSErrors underneath
        err.print(f"[red]cannot reach the API: {escape(str(e))}[/] (is `parallels up` running?)")
        raise typer.Exit(1) from e
    except Exception as e:
        if type(e).__module__.startswith("httpx"):
            err.print(
                f"[red]cannot reach the API: {escape(str(e))}[/] (is `parallels up` running?)"
            )
            raise typer.Exit(1) from e
        raise


def dag_push(file: Path, api_url: ApiUrl = None, token: Token = None) -> None:
    """Save a DAG file as a template (a new version if it exists)."""
    from parallels.cli import _load_file, console

    doc = _load_file(file, Settings())
    with _client(api_url, token) as c:
        t = _call(lambda: c.push(doc))
    if t["changed"]:
        console.print(f"[green]saved[/] {t['name']} version {t['version']}")
    else:
        console.print(f"unchanged: {t['name']} version {t['version']} already holds this spec")


def dag_list(api_url: ApiUrl = None, token: Token = None) -> None:
    """List templates (latest versions)."""
    from parallels.cli import console

    with _client(api_url, token) as c:
        page = _call(lambda: c.templates(limit=500))
    table = Table("name", "version", "nodes", "owner", "saved")
    for t in page["items"]:
        table.add_row(
            t["name"], str(t["version"]), str(len(t["spec"].get("nodes", []))),
            t["owner"] or "", t["created_at"][:19],
        )  # fmt: skip
    console.print(table)


@run_app.command("start")
def run_start(
    target: Annotated[str, typer.Argument(help="a template name, or a DAG file")],
    param: Annotated[list[str], typer.Option("--param", "-p", help="name=value")] = [],  # noqa: B006
    version: Annotated[int | None, typer.Option(help="template version (default: latest)")] = None,
    name: Annotated[str | None, typer.Option(help="MLflow run name")] = None,
    watch: Annotated[bool, typer.Option(help="follow progress until the run ends")] = True,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Start a run of a template (or of a DAG file) and watch it."""
    from parallels.cli import _load_file, _parse_params, console

    params = _parse_params(param)
    path = Path(target)
    with _client(api_url, token) as c:
        if path.suffix in (".yaml", ".yml", ".json") or path.is_file():
            spec = _load_file(path, Settings())
            run = _call(lambda: c.start(spec=spec, parameters=params, run_name=name))
        else:
            run = _call(lambda: c.start(target, version=version, parameters=params, run_name=name))
        console.print(f"started {run['id']}  {run['links']['temporal']}")
        _follow(c, run["id"], watch)


def _follow(c: ParallelsClient, run_id: str, watch: bool) -> None:
    """Watch a run to its end and exit 0 only if it succeeded (no-op without --watch)."""
    if not watch:
        return
    final = _call(lambda: _watch(c, run_id))
    _print_run(final)
    raise typer.Exit(0 if final["status"] == "succeeded" else 1)


def _watch(c: ParallelsClient, run_id: str) -> dict[str, Any]:
    """Follow the run's event stream; reconnect if it drops (the API restarted, a proxy cut it)."""
    from parallels.cli import console

    with Live(console=console, refresh_per_second=4) as live:
        while True:
            try:
                for event, data in c.events(run_id):
                    if event == "progress" and data.get("progress"):
                        live.update(render(DagProgress.model_validate(data["progress"])))
                    if event == "end":
                        return _call(lambda: c.run(run_id))
            except ApiError:
                raise
            except (OSError, httpx.HTTPError):
                pass  # the stream dropped: fall through to a reconnect
            run = _call(lambda: c.run(run_id))
            if run["status"] != "running":
                return run
            time.sleep(1.0)


def _print_run(run: dict[str, Any]) -> None:
    from parallels.cli import console, err

    status = run["status"]
    colour = "green" if status == "succeeded" else "red"
    console.print(f"\n[{colour}]{status}[/]  {run['id']}")
    console.print(f"  Temporal: {run['links']['temporal']}")
    if run["links"].get("mlflow"):
        console.print(f"  MLflow:   {run['links']['mlflow']}")
    progress = run.get("progress") or {}
    if progress.get("error"):
        err.print(progress["error"], markup=False)


@run_app.command("list")
def run_list(
    template: Annotated[str | None, typer.Option(help="only runs of this DAG")] = None,
    status: Annotated[str | None, typer.Option(help="running, succeeded, failed, ...")] = None,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """List DAG runs, newest first."""
    from parallels.cli import console

    with _client(api_url, token) as c:
        runs = _call(lambda: c.runs(template, status))
    table = Table("id", "dag", "status", "started", "owner")
    for r in runs:
        table.add_row(
            r["id"], r["dag"] or "", r["status"], (r["started_at"] or "")[:19], r["owner"] or ""
        )
    console.print(table)


@run_app.command("show")
def run_show(
    run_id: str, as_json: Annotated[bool, typer.Option("--json")] = False,
    api_url: ApiUrl = None, token: Token = None,
) -> None:  # fmt: skip
    """Show a run: status, per-node progress and links."""
    from parallels.cli import console

    with _client(api_url, token) as c:
        run = _call(lambda: c.run(run_id))
    if as_json:
        console.print_json(json.dumps(run))
        return
    if run.get("progress"):
        console.print(render(DagProgress.model_validate(run["progress"])))
    _print_run(run)


@run_app.command("retry")
def run_retry(
    run_id: str,
    watch: Annotated[bool, typer.Option(help="follow progress until the run ends")] = True,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Retry a failed or cancelled run: nodes that succeeded are reused, not run again."""
    from parallels.cli import console

    with _client(api_url, token) as c:
        run = _call(lambda: c.retry(run_id))
        console.print(f"started {run['id']} (retry of {run_id})  {run['links']['temporal']}")
        _follow(c, run["id"], watch)


@run_app.command("cancel")
def run_cancel(run_id: str, api_url: ApiUrl = None, token: Token = None) -> None:
    """Cancel a run: its processes are killed, its MLflow runs marked KILLED."""
    from parallels.cli import console

    with _client(api_url, token) as c:
        _call(lambda: c.cancel(run_id))
    console.print(f"cancel requested for {run_id}")
