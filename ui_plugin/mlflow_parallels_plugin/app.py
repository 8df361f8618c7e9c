"""`mlflow server --app-name parallels`: MLflow's own server plus the Parallels tab.

MLflow 3 serves a FastAPI app under uvicorn with its Flask app mounted at "/" as a catch-all; the
Parallels pages are mounted in front of it, and MLflow's index.html gains one script that adds the
tab to MLflow's navigation.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Mount

from mlflow_parallels_plugin.settings import PluginSettings
from mlflow_parallels_plugin.web import build_web_app

MOUNT = "/parallels"
TAB_SCRIPT = f'<script src="{MOUNT}/static/tab.js" defer></script>'
_flask_hooked = False


def create_app() -> Any:
    """The ASGI app uvicorn serves (a factory: MLflow passes `--factory` for functions)."""
    settings = PluginSettings.from_env()
    from mlflow.server import app as flask_app
    from mlflow.server.fastapi_app import app as fastapi_app

    _add_tab(flask_app)
    if not any(getattr(r, "path", None) == MOUNT for r in fastapi_app.router.routes):
        # First in the table: MLflow's Flask mount at "/" would otherwise catch these paths.
        fastapi_app.router.routes.insert(0, Mount(MOUNT, app=build_web_app(settings)))
    return fastapi_app


def inject_tab(html: str) -> str:
    if TAB_SCRIPT in html or "</body>" not in html:
        return html
    return html.replace("</body>", TAB_SCRIPT + "</body>", 1)


def _add_tab(flask_app: Any) -> None:
    global _flask_hooked
    if _flask_hooked:
        return
    from flask import request

    @flask_app.after_request  # type: ignore[untyped-decorator]
    def _with_tab(response: Any) -> Any:
        if (
            request.path in ("/", "/index.html")
            and response.status_code == 200
            and response.mimetype == "text/html"
        ):
            response.direct_passthrough = False  # index.html is sent as a file otherwise
            response.set_data(inject_tab(response.get_data(as_text=True)))
            response.headers.pop("ETag", None)  # a page cached without the tab is not reused
            response.headers["Cache-Control"] = "no-cache"
        return response

    _flask_hooked = True
