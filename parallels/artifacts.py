"""Listing and fetching input files through MLflow's artifact repositories.

Any URI MLflow can read works as an input root: local paths, `runs:/`, `models:/`, `s3://`, ...
"""

from __future__ import annotations

import posixpath
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

from parallels.errors import InputError, TransientError
from parallels.partitioning import FileEntry


def _repo(uri: str, tracking_uri: str | None) -> ArtifactRepository:
    try:
        if uri.startswith("runs:/"):
            # MLflow's runs:/ repository asks the tracking server for the run and its logged
            # models on *every* list and download; resolve it once to where the files live.
            uri = RunsArtifactRepository.get_underlying_uri(uri, tracking_uri)
        return get_artifact_repository(uri, tracking_uri=tracking_uri)
    except MlflowException as e:
        raise InputError(f"cannot read input '{uri}': {e.message}") from e


def list_files(uri: str, root_index: int = 0, tracking_uri: str | None = None) -> list[FileEntry]:
    """Every file under `uri`, recursively, with sizes; paths relative to `uri`."""
    local = local_path(uri)
    if local is not None:
        if not local.exists():
            raise InputError(f"input path '{uri}' does not exist")
        if local.is_file():
            raise InputError(f"input '{uri}' is a file; give the directory that holds it")
    repo = _repo(uri, tracking_uri)
    try:
        return sorted(
            (FileEntry(root=root_index, path=p, size=s) for p, s in _walk(repo, None)),
            key=lambda f: f.path,
        )
    except MlflowException as e:
        raise TransientError(f"cannot list input '{uri}': {e.message}") from e
    except OSError as e:
        raise InputError(f"cannot list input '{uri}': {e}") from e


def local_path(uri: str) -> Path | None:
    """The filesystem path of a local URI (`/data`, `file:///data`); None for other schemes."""
    if uri.startswith("file://"):
        return Path(urlparse(uri).path)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri):
        return None
    return Path(uri)


def _walk(repo: ArtifactRepository, path: str | None) -> Iterator[tuple[str, int]]:
    for info in repo.list_artifacts(path):
        if info.is_dir:
            yield from _walk(repo, info.path)
        else:
            yield info.path, int(info.file_size or 0)


def safe_relative(path: str) -> str:
    """Refuse paths that would escape the directory they are written into."""
    norm = posixpath.normpath(path.replace("\\", "/"))
    if norm.startswith("/") or norm == ".." or norm.startswith("../") or norm in ("", "."):
        raise InputError(f"refusing unsafe artifact path '{path}'")
    return norm


class Fetcher:
    """Downloads files from a set of roots, one repository object per root."""

    def __init__(self, tracking_uri: str | None = None) -> None:
        self._tracking_uri = tracking_uri
        self._repos: dict[str, ArtifactRepository] = {}

    def fetch(self, root: str, path: str, dest_dir: Path) -> Path:
        rel = safe_relative(path)
        target = (dest_dir / rel).resolve()
        base = dest_dir.resolve()
        if base not in target.parents:
            raise InputError(f"refusing artifact path '{path}' outside the input directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        repo = self._repos.get(root) or self._repos.setdefault(
            root, _repo(root, self._tracking_uri)
        )
        # Download into a staging dir beside the input dir, then move into place: a symlink
        # planted under the input dir by an earlier file cannot redirect the write.
        staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=base.parent))
        try:
            got = Path(repo.download_artifacts(rel, dst_path=str(staging)))  # type: ignore[no-untyped-call]
            if got.is_symlink():
                raise InputError(f"refusing symlinked artifact '{path}'")
            if target.is_symlink():
                target.unlink()
            got.replace(target)
        except MlflowException as e:
            raise TransientError(f"cannot fetch '{rel}' from '{root}': {e.message}") from e
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target
