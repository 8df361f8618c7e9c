"""MLflow plugin for Parallels: a UI tab served inside `mlflow server --app-name parallels`, and
the `parallels` project backend for `mlflow run --backend parallels`.

It speaks to the Parallels REST API over HTTP only, so it installs into the MLflow server's
environment without the engine.
"""
