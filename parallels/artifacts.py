"""Listing and fetching input files through MLflow's artifact repositories.

Any URI MLflow can read works as an input root: local paths, `runs:/`, `models:/`, `s3://`, ...
"""

from __future__ import annotations

import os
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
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
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
    """Downloads files from a set of roots, one repository object per root.

    A context manager: downloads from remote stores are staged in one private directory under
    `staging_parent` (beside, never inside, the directories written to), removed on exit.
    Nothing is ever written through a symlink, and no file is overwritten.
    """

    def __init__(self, staging_parent: Path, tracking_uri: str | None = None) -> None:
        self._tracking_uri = tracking_uri
        self._repos: dict[str, ArtifactRepository] = {}
        self._staging_parent = staging_parent
        self._staging: Path | None = None
        self._count = 0
        # Directories under a destination already made and checked to hold no symlink.
        self._dirs: set[Path] = set()
        self._bases: dict[Path, Path] = {}  # destination -> its resolved path

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    def _slot(self) -> Path:
        if self._staging is None:
            self._staging_parent.mkdir(parents=True, exist_ok=True)
            self._staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=self._staging_parent))
        self._count += 1
        return self._staging / str(self._count)

    def _target(self, dest_dir: Path, rel: str) -> Path:
        base = self._bases.get(dest_dir) or self._bases.setdefault(dest_dir, dest_dir.resolve())
        target = base / rel
        parent = target.parent
        if parent not in self._dirs:
            parent.mkdir(parents=True, exist_ok=True)
            # A symlinked directory (planted by an earlier file) would redirect the write.
            if parent.resolve() != parent:
                raise InputError(f"refusing artifact path '{rel}' outside the input directory")
            self._dirs.add(parent)
        return target

    def fetch(self, root: str, path: str, dest_dir: Path) -> Path:
        rel = safe_relative(path)
        target = self._target(dest_dir, rel)
        repo = self._repos.get(root) or self._repos.setdefault(
            root, _repo(root, self._tracking_uri)
        )
        try:
            if isinstance(repo, LocalArtifactRepository):
                # The files are on this machine: a plain copy. MLflow's download_artifacts
                # costs ~4 ms of CPU per file here (a thread pool and progress bar per call),
                # which dominated partitions of many small files.
                _copy_new(Path(repo.artifact_dir) / rel, target)
            else:
                self._download(repo, rel, target)
        except MlflowException as e:
            raise TransientError(f"cannot fetch '{rel}' from '{root}': {e.message}") from e
        except FileExistsError as e:
            raise InputError(f"two input files map to '{rel}' in {dest_dir.name}/") from e
        except FileNotFoundError as e:
            raise InputError(f"input file '{rel}' is no longer in '{root}'") from e
        return target

    def _download(self, repo: ArtifactRepository, rel: str, target: Path) -> None:
        # Into the staging dir, then moved into place; `replace` would overwrite, so an existing
        # file (or symlink) there is refused first, as the local copy's O_EXCL refuses it.
        if target.is_symlink() or target.exists():
            raise FileExistsError(target)
        slot = self._slot()
        slot.mkdir()
        try:
            got = Path(repo.download_artifacts(rel, dst_path=str(slot)))  # type: ignore[no-untyped-call]
            if got.is_symlink():
                raise InputError(f"refusing symlinked artifact '{rel}'")
            got.replace(target)
        finally:
            shutil.rmtree(slot, ignore_errors=True)


def _copy_new(src: Path, target: Path) -> None:
    """Copy into a file that must not exist yet; never follows a symlink at `target`."""
    with src.open("rb") as fsrc:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as fdst:
            shutil.copyfileobj(fsrc, fdst)
