"""Git resolution against real repositories: refs, caching, and the source left untouched."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from activities.git_source import GitSources
from parallels.errors import ProjectError
from parallels.models import ResolveInput
from tests.conftest import make_repo

MLPROJECT = "name: p\nentry_points:\n  main:\n    command: echo {x}\n    parameters: {x: string}\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def snapshot(repo: Path) -> tuple[str, str, list[str]]:
    """Everything a resolver could disturb: refs, config, and the working tree."""
    return (
        git(repo, "show-ref"),
        (repo / ".git" / "config").read_text(),
        sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if ".git" not in p.parts),
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = make_repo(tmp_path / "src", {"proj/MLproject": MLPROJECT, "proj/a.py": "print(1)\n"})
    git(r, "tag", "v1")
    return r


def test_refs_resolve_and_checkouts_are_cached(repo, tmp_path):
    sources = GitSources(tmp_path / "cache")
    before = snapshot(repo)
    v1 = git(repo, "rev-parse", "HEAD")
    for uri in (str(repo), f"file://{repo}"):
        r = sources.resolve(ResolveInput(uri=uri, version="v1", subdirectory="proj"))
        assert r.commit == v1
        assert r.project.entry_point("main").parameters["x"].type == "string"
    assert (
        sources.resolve(ResolveInput(uri=str(repo), version=v1[:8], subdirectory="proj")).commit
        == v1
    )

    make_repo(repo, {"proj/b.py": "print(2)\n"})  # the branch moves on
    head = git(repo, "rev-parse", "HEAD")
    assert (
        sources.resolve(ResolveInput(uri=str(repo), version="main", subdirectory="proj")).commit
        == head
    )
    assert sources.resolve(ResolveInput(uri=str(repo), subdirectory="proj")).commit == head
    assert (
        sources.resolve(ResolveInput(uri=str(repo), version="v1", subdirectory="proj")).commit == v1
    )

    old, new = sources.checkout(str(repo), v1), sources.checkout(str(repo), head)
    assert not (old / "proj" / "b.py").exists() and (new / "proj" / "b.py").exists()
    assert sources.checkout(str(repo), v1) == old  # cached, not cloned again
    after = snapshot(repo)
    assert before[1] == after[1]  # config untouched: nothing ran inside the source repo
    assert set(before[2]) < set(after[2]) and "proj/b.py" in after[2]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (ResolveInput(uri="/no/such/repo"), "project repository '/no/such/repo' does not exist"),
        (ResolveInput(uri="SRC", version="nope"), "version 'nope' not found"),
        (
            ResolveInput(uri="SRC", subdirectory="missing"),
            "project directory 'missing' does not exist",
        ),
    ],
)
def test_bad_refs_are_permanent_errors(repo, tmp_path, ref, message):
    ref = ref.model_copy(update={"uri": ref.uri.replace("SRC", str(repo))})
    with pytest.raises(ProjectError, match=message):
        GitSources(tmp_path / "cache").resolve(ref)


def test_a_plain_directory_is_refused(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "MLproject").write_text(MLPROJECT)
    with pytest.raises(ProjectError, match="cannot read git repository"):
        GitSources(tmp_path / "cache").resolve(ResolveInput(uri=str(plain)))
