"""The image recipe (no Docker engine runs here, so it is checked as text): hadolint's main rules,
COPY sources that exist, and a lock file that pins every runtime dependency."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
LOCK = (ROOT / "deploy" / "requirements.lock").read_text()


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_base_image_is_pinned_and_the_process_runs_as_non_root():
    args = dict(rest.split("=", 1) for op, rest in instructions() if op == "ARG" and "=" in rest)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", args["PYTHON_IMAGE"])  # no floating tag
    ops = [op for op, _ in instructions()]
    last_from = len(ops) - 1 - ops[::-1].index("FROM")
    users = [rest for op, rest in instructions()[last_from:] if op == "USER"]
    assert users and not users[-1].startswith(("root", "0"))
    assert "HEALTHCHECK" in ops
    entry = next(rest for op, rest in instructions() if op == "ENTRYPOINT")
    assert entry.startswith("[")  # exec form: signals reach tini, then the worker


def test_packages_are_pinned_and_caches_dropped():
    for op, rest in instructions():
        if op != "RUN":
            continue
        if "apt-get install" in rest:
            assert "--no-install-recommends" in rest and "rm -rf /var/lib/apt/lists" in rest
            packages = rest.split("apt-get install", 1)[1].split("&&")[0].split()
            assert all("=" in p for p in packages if not p.startswith("-")), packages
        if "pip install" in rest:
            assert "-r deploy/requirements.lock" in rest or "--no-deps" in rest
    assert "PIP_NO_CACHE_DIR=1" in DOCKERFILE


def test_copied_sources_exist_and_are_not_ignored():
    ignore = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text()
    for op, rest in instructions():
        if op == "COPY" and not rest.startswith("--from"):
            for src in rest.split()[:-1]:
                assert (ROOT / src).exists(), src
                assert f"!{src}" in ignore or f"!{src}/**" in ignore, src


def test_lock_pins_every_runtime_dependency():
    pins = {}
    for line in LOCK.splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"not pinned: {line}"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0]).lower()
        assert name in pins, f"{name} is a dependency but not in deploy/requirements.lock"
