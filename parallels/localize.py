"""Turning relative project URIs of a DAG file into git repositories on this machine.

A spec in a file may say `project: {uri: ., subdirectory: ingest}`; that means "the git
repository holding this file". We resolve it to the repository root plus a subdirectory.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import git

from parallels.errors import ProjectError


def _is_relative_local(uri: str) -> bool:
    return not (uri.startswith("/") or ":" in uri.split("/", 1)[0] or "@" in uri.split("/", 1)[0])


def localize(doc: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Rewrite relative local project URIs against `base_dir` (a raw, unvalidated document)."""
    nodes = doc.get("nodes")
    if not isinstance(nodes, list):
        return doc
    out_nodes = []
    for node in nodes:
        project = node.get("project") if isinstance(node, dict) else None
        uri = project.get("uri") if isinstance(project, dict) else None
        if isinstance(project, dict) and isinstance(uri, str) and uri and _is_relative_local(uri):
            path = (base_dir / uri).resolve()
            try:
                repo = git.Repo(path, search_parent_directories=True)
            except (git.InvalidGitRepositoryError, git.NoSuchPathError) as e:
                raise ProjectError(
                    f"project '{uri}' ({path}) is not inside a git repository: "
                    "Parallels runs committed code (git init && git commit first)"
                ) from e
            root = Path(repo.working_tree_dir or path)
            sub = path.relative_to(root).as_posix()
            extra = project.get("subdirectory") or ""
            subdir = "/".join(p for p in (sub if sub != "." else "", extra) if p)
            node = {**node, "project": {**project, "uri": str(root), "subdirectory": subdir}}
        out_nodes.append(node)
    return {**doc, "nodes": out_nodes}


def snapshot_repo(source: Path, dest: Path) -> str:
    """Copy a folder into a git repository at `dest` and commit it (no-op if unchanged).

    Used by the demo, so the example runs as committed code even from an unpacked archive.
    """
    dest.mkdir(parents=True, exist_ok=True)
    repo = git.Repo(dest) if (dest / ".git").exists() else git.Repo.init(dest)
    for child in dest.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.copytree(
        source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "mlruns")
    )
    repo.git.add("-A")
    if repo.is_dirty(index=True, untracked_files=True) or not repo.head.is_valid():
        repo.index.commit(
            "Parallels example snapshot",
            author=git.Actor("parallels", "parallels@localhost"),
            committer=git.Actor("parallels", "parallels@localhost"),
        )
    return str(repo.head.commit.hexsha)
