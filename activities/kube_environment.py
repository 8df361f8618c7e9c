"""prepare_environment on a Kubernetes cluster: the project's environment image, built in the
cluster by a kaniko Job when its content-hash tag is not in the registry yet.

Safe to retry and to run twice at once: the Job and its ConfigMap are named from the tag, so
two nodes (or two runs) needing the same environment share one build.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio import activity

from activities.errors import translate_errors
from activities.git_source import GitSources
from activities.kube import Kube
from activities.registry import credentials, image_exists, split_ref
from parallels import images, pyenv
from parallels.errors import EnvironmentError_
from parallels.models import PreparedEnv, PrepareEnvInput
from parallels.pods import build_manifests, build_name

LOG_TAIL_LINES = 40


class KubeEnvironments:
    def __init__(self, kube: Kube, sources: GitSources, *, build_timeout: float = 3600.0):
        self._kube = kube
        self._cluster = kube.cluster
        self._sources = sources
        self._build_timeout = build_timeout

    @activity.defn(name="prepare_environment")
    @translate_errors
    async def prepare_environment(self, inp: PrepareEnvInput) -> PreparedEnv:
        p = inp.project
        checkout = await asyncio.to_thread(self._sources.checkout, p.uri, p.commit)
        recipe = await asyncio.to_thread(self._recipe, checkout / p.subdirectory, inp)
        image = images.image_ref(self._cluster.registry, recipe)
        env = PreparedEnv(source_dir="", python="python", env_id=recipe.tag(), image=image)
        if await asyncio.to_thread(self._exists, image):
            activity.logger.info("environment image %s exists", image)
            return env
        await self._build(image, images.context_files(recipe))
        return env

    def _recipe(self, project_dir: Path, inp: PrepareEnvInput) -> images.ImageRecipe:
        spec = inp.project.project
        text: str | None = None
        env: pyenv.PythonEnv | None = None
        files: dict[str, str] = {}
        if spec.python_env and not spec.docker_image:
            text, env, raw = pyenv.read_python_env(project_dir, spec.python_env)
            files = {name: data.decode("utf-8") for name, data in raw.items()}
        return images.recipe(
            spec,
            python_env_text=text,
            requirement_files=files,
            runner=self._cluster.runner_requirement,
            python_env=env,
        )

    def _exists(self, image: str) -> bool:
        host = split_ref(image)[0]
        secret = (
            self._kube.read_secret(self._cluster.registry_secret)
            if self._cluster.registry_secret
            else None
        )
        return image_exists(
            image, auth=credentials(secret, host), insecure=self._cluster.insecure_registry
        )

    async def _build(self, image: str, files: dict[str, str]) -> None:
        configmap, job = build_manifests(image, files, self._cluster)
        name = build_name(image)
        await asyncio.to_thread(self._kube.create_configmap, configmap)
        created = await asyncio.to_thread(self._kube.create_job, job)
        activity.logger.info("image build %s: %s (%s)", name, created, image)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._build_timeout
        while True:
            current = await asyncio.to_thread(self._kube.read_job, name)
            if current is None:
                raise EnvironmentError_(f"image build job {name} disappeared before it finished")
            status = current.get("status") or {}
            if status.get("succeeded"):
                return
            if _failed(current):
                log = await asyncio.to_thread(self._build_log, name)
                # Removed so a later run builds again (the cause may have been passing).
                await asyncio.to_thread(self._kube.delete_job, name)
                raise EnvironmentError_(
                    f"building the environment image {image} failed on cluster "
                    f"'{self._cluster.name}'; the build log ends:\n{log}"
                )
            if loop.time() > deadline:
                await asyncio.to_thread(self._kube.delete_job, name)
                raise EnvironmentError_(
                    f"building the environment image {image} took over {self._build_timeout:g}s"
                )
            activity.heartbeat(f"building {image}: {status.get('active', 0)} active")
            await asyncio.sleep(min(self._cluster.poll_seconds, 5.0))

    def _build_log(self, job: str) -> str:
        text = ""
        for pod in self._kube.job_pods(job):
            text += self._kube.pod_log(pod["metadata"]["name"], "kaniko")
        lines = text.strip().splitlines()[-LOG_TAIL_LINES:]
        return "\n".join(lines) or "(no log: the build pod never ran)"


def _failed(job: dict[str, object]) -> bool:
    status = job.get("status") or {}
    assert isinstance(status, dict)
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return True
    spec = job.get("spec") or {}
    assert isinstance(spec, dict)
    return int(status.get("failed") or 0) > int(spec.get("backoffLimit", 6))
