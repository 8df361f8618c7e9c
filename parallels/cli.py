"""The `parallels` command: embedded stack, worker, demo, and DAG files from a terminal.

This is a process edge: settings are read here once and passed down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from parallels.errors import ParallelsError, SpecInvalid
from parallels.settings import Settings, config_file
from parallels.spec import Scalar

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
dag_app = typer.Typer(no_args_is_help=True, help="Validate DAG files and manage templates.")
app.add_typer(dag_app, name="dag")
# Piped output (scripts, CI) gets wide tables, so ids and links are never cut.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 200)

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "batch_inference"


def _register_api_commands() -> None:
    from parallels import cli_api, cli_schedules

    dag_app.command("push")(cli_api.dag_push)
    dag_app.command("list")(cli_api.dag_list)
    app.add_typer(cli_api.run_app, name="run")
    app.add_typer(cli_schedules.schedule_app, name="schedule")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _load_file(path: Path, settings: Settings) -> dict[str, Any]:
    """Read, localize and validate a DAG file; exits 2 with every problem on bad input."""
    from parallels.localize import localize
    from parallels.validation import load_spec, parse_document

    try:
        data = path.read_bytes()
    except OSError as e:
        err.print(f"[red]cannot read {escape(str(path))}: {e.strerror}[/]")
        raise typer.Exit(2) from e
    try:
        doc = parse_document(data)
        load_spec(doc, max_parallelism=settings.max_parallelism)
        return localize(doc, path.resolve().parent)
    except SpecInvalid as e:
        err.print(f"[red]{escape(str(path))}: invalid DAG spec[/]")
        for p in e.problems:
            err.print(f"  {p}", markup=False)
        raise typer.Exit(2) from e
    except ParallelsError as e:
        err.print(f"[red]{escape(str(path))}: {escape(str(e))}[/]")
        raise typer.Exit(2) from e


def _parse_params(items: list[str]) -> dict[str, Scalar]:
    out: dict[str, Scalar] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            err.print(f"[red]parameter '{item}' must look like name=value[/]")
            raise typer.Exit(2)
        try:
            parsed = json.loads(value)
            out[key] = parsed if isinstance(parsed, str | int | float | bool) else value
        except json.JSONDecodeError:
            out[key] = value
    return out


@dag_app.command("validate")
def dag_validate(file: Path) -> None:
    """Check a DAG file (YAML or JSON) and print every problem with its path."""
    spec = _load_file(file, Settings())
    console.print(f"[green]{file}: valid[/] ({len(spec['nodes'])} nodes)")


@contextlib.asynccontextmanager
async def _serving_api(settings: Settings, client: Any) -> AsyncIterator[None]:
    """The REST API inside the embedded stack: open (no tokens) unless tokens are configured."""
    import uvicorn

    from api.app import create_app

    if not (settings.api_tokens or settings.api_tokens_file):
        settings = settings.model_copy(update={"api_open": True})

    async def temporal() -> Any:
        return client

    config = uvicorn.Config(
        create_app(settings, temporal=temporal),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start (e.g. port in use)
            raise RuntimeError(f"API could not start on {settings.api_host}:{settings.api_port}")
        await asyncio.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def _embedded(
    settings: Settings, *, ui: bool = True, api: bool = False
) -> AsyncIterator[Settings]:
    """Temporal dev server + MLflow server + a worker, all under settings.state_dir."""
    import worker
    from parallels.stack import EmbeddedServers, plugin_app
    from parallels.temporal import connect, ensure_search_attributes

    port = int(settings.temporal_address.rsplit(":", 1)[1])
    # With the API up and the UI plugin installed, MLflow gets the Parallels tab.
    app = plugin_app() if api else None
    servers = EmbeddedServers(
        settings.state_dir,
        temporal_port=port,
        ui_port=settings.temporal_ui_port,
        mlflow_port=settings.mlflow_port,
        ui=ui,
        mlflow_app=app,
        api_url=f"http://{settings.api_host}:{settings.api_port}" if app else None,
    )
    with console.status("starting Temporal dev server and MLflow server..."):
        await asyncio.to_thread(servers.__enter__)
    try:
        effective = settings.model_copy(update={"mlflow_tracking_uri": servers.mlflow.uri})
        client = await connect(effective)
        await ensure_search_attributes(client, effective.temporal_namespace)
        async with worker.running(worker.build_workers(client, effective)):
            if not api:
                yield effective
                return
            async with _serving_api(effective, client):
                yield effective
    finally:
        await asyncio.to_thread(servers.stop)


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


@app.command()
def up(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Start the embedded stack (Temporal, MLflow, a worker) until Ctrl-C."""
    _setup_logging(verbose)
    settings = Settings()

    from parallels.stack import plugin_app

    async def main() -> None:
        async with _embedded(settings, api=True) as s:
            console.print(f"Temporal  {s.temporal_address}  console: {s.temporal_ui_url}")
            console.print(f"MLflow    {s.mlflow_tracking_uri}")
            if plugin_app():
                console.print(f"Parallels {s.mlflow_tracking_uri}/parallels/  (tab in MLflow's UI)")
            console.print(f"API       http://{s.api_host}:{s.api_port}/api/v1")
            console.print(f"state     {s.state_dir}")
            console.print("worker    polling 'parallels' and 'parallels-local'; Ctrl-C stops")
            await _until_interrupted()
            console.print("stopping...")

    _run(main())


@app.command("worker")
def worker_cmd(
    cluster: Annotated[
        list[str] | None,
        typer.Option(
            "--cluster",
            "-c",
            help="serve only this cluster's task queue (repeatable); its credentials stay here",
        ),
    ] = None,
    control: Annotated[
        bool | None,
        typer.Option(
            "--control/--no-control",
            help="also serve the control queue (workflows, bookkeeping); default: only "
            "without --cluster",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run a worker against the configured Temporal and MLflow until Ctrl-C.

    Without options it serves the control queue and the built-in `local` cluster."""
    _setup_logging(verbose)
    import worker

    settings = Settings()
    clusters = cluster or ["local"]
    serve_control = control if control is not None else not cluster
    for name in clusters:
        if name != "local":
            try:
                settings.kube_cluster(name)
            except ValueError as e:
                err.print(f"[red]{escape(str(e))}[/]")
                raise typer.Exit(2) from e

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await worker.run(settings, stop, clusters=clusters, control=serve_control)

    _run(main())


@app.command("codec-server")
def codec_server_cmd(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Serve /encode and /decode with the configured codec keys, for the Temporal web console
    (Settings > Codec Server) and `temporal workflow show --codec-endpoint`."""
    _setup_logging(verbose)
    import uvicorn

    from parallels import codec_server
    from parallels.temporal import data_converter

    settings = Settings()
    try:
        codec = data_converter(settings).payload_codec
    except ParallelsError as e:
        err.print(f"[red]{escape(str(e))}[/]")
        raise typer.Exit(2) from e
    if codec is None:
        err.print("[red]no codec keys: set PARALLELS_CODEC_KEYS or PARALLELS_CODEC_KEYS_FILE[/]")
        raise typer.Exit(2)
    origins = [o.strip() for o in settings.codec_cors_origins.split(",") if o.strip()]
    uvicorn.run(
        codec_server.app(codec, origins),
        host=settings.codec_host,
        port=settings.codec_port,
        log_level="info",
    )


@app.command("api")
def api_cmd(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Serve the REST API against the configured Temporal and template store."""
    _setup_logging(verbose)
    import uvicorn

    from api.app import create_app

    settings = Settings()
    try:
        app_ = create_app(settings)
    except (ValueError, ParallelsError) as e:
        err.print(f"[red]{escape(str(e))}[/]")
        raise typer.Exit(2) from e
    uvicorn.run(app_, host=settings.api_host, port=settings.api_port, log_level="info")


@app.command()
def demo(
    keep_up: Annotated[
        bool, typer.Option(help="keep the stack running after the demo, until Ctrl-C")
    ] = False,
    images: Annotated[int, typer.Option(help="how many images to classify")] = 400,
) -> None:
    """Run the example batch-inference DAG end to end on the embedded stack."""
    from parallels.localize import localize, snapshot_repo
    from parallels.validation import parse_document

    settings = Settings()
    if not (EXAMPLE_DIR / "dag.yaml").exists():
        err.print(f"[red]example not found at {EXAMPLE_DIR}: run from a source checkout[/]")
        raise typer.Exit(2)

    async def main() -> int:
        from parallels import watch as w

        repo = settings.state_dir / "example-repo"
        commit = await asyncio.to_thread(snapshot_repo, EXAMPLE_DIR, repo)
        doc = localize(parse_document((repo / "dag.yaml").read_bytes()), repo)
        console.print(f"example projects committed to {repo} at {commit[:12]}")
        async with _embedded(settings) as s:
            console.print(
                f"Temporal console: {s.temporal_ui_url}   MLflow: {s.mlflow_tracking_uri}"
            )
            from parallels.temporal import connect

            client = await connect(s)
            handle = await w.start_dag(
                client, doc, task_queue=s.task_queue, parameters={"images": images}
            )
            console.print(
                f"started {handle.id}: "
                f"{s.temporal_ui_url}/namespaces/{s.temporal_namespace}/workflows/{handle.id}"
            )
            result, _, error = await w.watch(handle, console)
            code = _summarize(s, result, error)
            if code == 0 and result is not None:
                _print_summary_json(s, result)
            if keep_up:
                console.print("stack still running for you to explore; Ctrl-C stops it")
                await _until_interrupted()
            return code

    raise typer.Exit(_run(main()))


def _summarize(settings: Settings, result: Any, error: str | None) -> int:
    if result is None:
        err.print(f"[red]run failed:[/] {escape(str(error))}")
        return 1
    base = settings.mlflow_tracking_uri.rstrip("/")
    exp = result.experiment_id
    console.print(
        f"\n[green]succeeded[/]  MLflow run: {base}/#/experiments/{exp}/runs/{result.mlflow_run_id}"
    )
    for node_id, node in result.nodes.items():
        console.print(
            f"  {node_id:<12} {node.status:<10} {node.partitions} partition(s)  "
            f"{base}/#/experiments/{exp}/runs/{node.node_run_id}"
        )
    return 0


def _print_summary_json(settings: Settings, result: Any) -> None:
    from mlflow.tracking import MlflowClient

    agg = result.nodes.get("aggregate")
    if agg is None or not agg.partition_run_ids:
        return
    client = MlflowClient(settings.mlflow_tracking_uri)
    path = client.download_artifacts(
        agg.partition_run_ids[0], "output/summary.json", str(settings.state_dir / "demo-out")
    )
    summary = json.loads(Path(path).read_text())
    console.print(
        f"summary: {summary['images']} images classified, accuracy {summary['accuracy']:.3f}"
    )


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run(coro: Any) -> Any:
    # SIGTERM unwinds like Ctrl-C, so the embedded servers are stopped, not orphaned.
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        return asyncio.run(coro)
    except ParallelsError as e:
        err.print(f"[red]{escape(str(e))}[/]")
        raise typer.Exit(2) from e
    except RuntimeError as e:
        # StackError and connection failures: a message, not a traceback.
        err.print(f"[red]{escape(str(e))}[/]")
        raise typer.Exit(1) from e
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def main() -> None:
    _register_api_commands()
    try:
        Settings()  # a broken config file or variable is reported once, before any command
    except (tomllib.TOMLDecodeError, ValidationError) as e:
        err.print(f"[red]invalid settings[/] (from {config_file()} or PARALLELS_*):", e)
        raise SystemExit(2) from None
    app()
