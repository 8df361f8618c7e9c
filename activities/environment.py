"""prepare_environment: the project's source at its commit, and the interpreter to run it.

Virtualenvs are keyed by the content hash of the environment spec: built once per machine,
reused by every partition and every later run.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from filelock import FileLock
from temporalio import activity

from activities.errors import translate_errors
from activities.git_source import GitSources
from parallels import pyenv
from parallels.errors import EnvironmentError_
from parallels.models import PreparedEnv, PrepareEnvInput
from parallels.spec import EnvManager

READY_MARKER = ".parallels-ready"


class Environments:
    def __init__(self, cache_dir: Path, sources: GitSources, interpreter: str = sys.executable):
        self._envs = cache_dir / "envs"
        self._sources = sources
        self._interpreter = interpreter

    @activity.defn(name="prepare_environment")
    @translate_errors
    async def prepare_environment(self, inp: PrepareEnvInput) -> PreparedEnv:
        p = inp.project
        checkout = await asyncio.to_thread(self._sources.checkout, p.uri, p.commit)
        project_dir = checkout / p.subdirectory
        manager = pyenv.choose_manager(p.project, inp.env_manager)
        if manager == EnvManager.LOCAL:
            return PreparedEnv(
                source_dir=str(project_dir), python=self._interpreter, env_id="local"
            )
        assert p.project.python_env is not None
        python = await self.ensure_virtualenv(project_dir, p.project.python_env)
        return PreparedEnv(
            source_dir=str(project_dir), python=str(python), env_id=python.parent.parent.name
        )

    async def ensure_virtualenv(self, project_dir: Path, env_file: str) -> Path:
        text, spec, files = pyenv.read_python_env(project_dir, env_file)
        base = self._base_python(spec.python)
        env_dir = self._envs / pyenv.env_hash(text, files, base)
        python = env_dir / "bin" / "python"
        if (env_dir / READY_MARKER).exists():
            return python
        self._envs.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(env_dir) + ".lock")
        await asyncio.to_thread(lock.acquire)
        try:
            if (env_dir / READY_MARKER).exists():
                return python
            # A half-built env from a killed worker is removed, never trusted.
            shutil.rmtree(env_dir, ignore_errors=True)
            activity.logger.info("building virtualenv %s", env_dir.name)
            await self._run(
                [base, "-m", "venv", str(env_dir)], project_dir, "create the virtualenv"
            )
            pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
            if spec.build_dependencies:
                await self._run(
                    [*pip, *spec.build_dependencies], project_dir, "install build_dependencies"
                )
            deps = [a for d in spec.dependencies for a in d.split(None, 1)]
            if deps:
                await self._run([*pip, *deps], project_dir, "install dependencies")
            (env_dir / READY_MARKER).write_text("ok\n")
        finally:
            lock.release()
        return python

    def _base_python(self, requested: str | None) -> str:
        if pyenv.version_matches(requested, sys.version_info[:3]):
            return self._interpreter
        assert requested is not None
        major_minor = ".".join(requested.split(".")[:2])
        found = shutil.which(f"python{major_minor}")
        if found:
            return found
        raise EnvironmentError_(
            f"python_env asks for Python {requested}; this worker runs "
            f"{'.'.join(map(str, sys.version_info[:3]))} and has no python{major_minor} on PATH"
        )

    async def _run(self, cmd: list[str], cwd: Path, what: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        comm = asyncio.ensure_future(proc.communicate())
        try:
            while not comm.done():
                await asyncio.wait({comm}, timeout=5)
                activity.heartbeat(what)
            out, _ = comm.result()
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            tail = "\n".join(out.decode(errors="replace").strip().splitlines()[-15:])
            raise EnvironmentError_(f"could not {what} (exit {proc.returncode}):\n{tail}")
