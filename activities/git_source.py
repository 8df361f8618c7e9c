"""Git sources: resolve a project's ref to a commit, and check out a commit, cached.

The user's repository is only ever read (cloned/fetched from); nothing runs inside it.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import tempfile
from pathlib import Path

import git
from filelock import FileLock
from temporalio import activity

from activities.errors import translate_errors
from parallels.errors import ProjectError
from parallels.mlproject import load_project_dir
from parallels.models import ResolvedProject, ResolveInput

_SHA = re.compile(r"^[0-9a-f]{40}$")


def _is_remote(uri: str) -> bool:
    return "://" in uri or re.match(r"^[\w.-]+@[\w.-]+:", uri) is not None


class GitSources:
    def __init__(self, cache_dir: Path) -> None:
        self._mirrors = cache_dir / "git" / "mirrors"
        self._checkouts = cache_dir / "git" / "checkouts"

    @activity.defn(name="resolve_project")
    @translate_errors
    async def resolve_project(self, ref: ResolveInput) -> ResolvedProject:
        return await asyncio.to_thread(self.resolve, ref)

    def resolve(self, ref: ResolveInput) -> ResolvedProject:
        commit = self.resolve_commit(ref.uri, ref.version)
        project_dir = self.checkout(ref.uri, commit) / ref.subdirectory
        try:
            spec = load_project_dir(project_dir)
        except ProjectError as e:
            raise ProjectError(f"project {_label(ref)} at {commit[:12]}: {e}") from e
        return ResolvedProject(
            uri=ref.uri,
            version=ref.version,
            subdirectory=ref.subdirectory,
            commit=commit,
            project=spec,
        )

    def resolve_commit(self, uri: str, version: str | None) -> str:
        mirror = self._mirror(uri, refresh=not (version and _SHA.match(version)))
        rev = version or "HEAD"
        try:
            return str(mirror.git.rev_parse("--verify", "--quiet", f"{rev}^{{commit}}"))
        except git.GitCommandError:
            raise ProjectError(
                f"version '{rev}' not found in {uri} (give a branch, tag or commit)"
            ) from None

    def checkout(self, uri: str, commit: str) -> Path:
        """A read-only-by-convention working tree of `commit`, shared by every run."""
        dest = self._checkouts / f"{_slug(uri)}-{commit}"
        if dest.is_dir():
            return dest
        self._checkouts.mkdir(parents=True, exist_ok=True)
        with FileLock(str(dest) + ".lock"):
            if dest.is_dir():
                return dest
            mirror = self._mirror(uri, refresh=False)
            tmp = Path(tempfile.mkdtemp(prefix=".co-", dir=self._checkouts))
            try:
                repo = git.Repo.clone_from(mirror.git_dir, tmp, no_checkout=True)
                repo.git.checkout("--detach", commit)
                repo.close()
                tmp.replace(dest)
            except git.GitCommandError as e:
                shutil.rmtree(tmp, ignore_errors=True)
                raise ProjectError(f"cannot check out {commit[:12]} of {uri}: {_stderr(e)}") from e
        return dest

    def _mirror(self, uri: str, *, refresh: bool) -> git.Repo:
        source = uri if _is_remote(uri) else str(Path(uri.removeprefix("file://")).resolve())
        if not _is_remote(uri) and not Path(source).exists():
            raise ProjectError(f"project repository '{uri}' does not exist")
        path = self._mirrors / f"{_slug(uri)}.git"
        self._mirrors.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            try:
                if not path.is_dir():
                    tmp = Path(tempfile.mkdtemp(prefix=".mirror-", dir=self._mirrors))
                    git.Repo.clone_from(source, tmp, mirror=True).close()
                    tmp.replace(path)
                    return git.Repo(path)
                repo = git.Repo(path)
                if refresh:
                    repo.git.fetch("--prune", "--tags", "origin", "+refs/*:refs/*")
                return repo
            except git.GitCommandError as e:
                raise ProjectError(f"cannot read git repository {uri}: {_stderr(e)}") from e


def _slug(uri: str) -> str:
    tail = re.sub(r"[^A-Za-z0-9]+", "-", uri.rstrip("/").rsplit("/", 1)[-1]).strip("-")[:40]
    return f"{tail or 'repo'}-{hashlib.sha256(uri.encode()).hexdigest()[:12]}"


def _label(ref: ResolveInput) -> str:
    return ref.uri + (f" ({ref.subdirectory})" if ref.subdirectory else "")


def _stderr(e: git.GitCommandError) -> str:
    text = str(e.stderr or e).strip().replace("stderr: ", "").strip("'\n ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "git failed"
