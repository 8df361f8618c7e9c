"""A Kubernetes API server (kmock's emulator, real HTTP + JSON), a kubelet played by the test,
and an image registry (the OCI distribution API's manifest HEAD), all on loopback.

The fake kubelet reads pods through the API like a real one, runs their containers as local
processes (the init container's git clone, then `python -m parallels.pod_main`) with the pod's
volumes mapped to a host directory, and reports status and logs back through the API. Tests pick
per pod what the kubelet does instead: OOM kill, eviction, image pull error...
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kmock
from kubernetes import client
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException

NS = "parallels"
Behaviour = Callable[[dict[str, Any], int], str]  # (pod, times this name was seen) -> mode


class FakeApiServer:
    """kmock's emulator on its own thread and loop (the worker calls it from threads)."""

    def __init__(self) -> None:
        self.logs: dict[str, bytes] = {}
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.url = ""
        self.emulator: Any = None
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fake-apiserver")

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake API server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        # A stopped worker's pod watch stays open until its server-side timeout, and aiohttp
        # waits up to 60 s for open connections: let the daemon thread finish that on its own.
        self._thread.join(2)

    def _serve(self) -> None:
        async def main() -> None:
            async with kmock.KubernetesEmulator() as emu, kmock.Server(emu) as srv:
                # Pod logs are the kubelet's to serve; the emulator has no notion of them.
                emu[kmock.subresource("log")] << (lambda req: self.logs.get(req.name, b""))
                self.emulator = emu
                self.url = str(srv.url).rstrip("/")
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                self._ready.set()
                await self._stop.wait()

        asyncio.run(main())

    def kubeconfig(self, path: Path, context: str) -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": context, "cluster": {"server": self.url}}],
                    "users": [{"name": "u", "user": {"token": "test-token"}}],
                    "contexts": [{"name": context, "context": {"cluster": context, "user": "u"}}],
                    "current-context": context,
                }
            )
        )
        return path

    def core(self) -> client.CoreV1Api:
        cfg = Configuration()
        cfg.host = self.url
        return client.CoreV1Api(ApiClient(cfg))

    def batch(self) -> client.BatchV1Api:
        cfg = Configuration()
        cfg.host = self.url
        return client.BatchV1Api(ApiClient(cfg))

    def pods(self) -> list[dict[str, Any]]:
        return self._list(self.core().list_namespaced_pod)

    def jobs(self) -> list[dict[str, Any]]:
        return self._list(self.batch().list_namespaced_job)

    def _list(self, fn: Callable[..., Any]) -> list[dict[str, Any]]:
        try:
            resp = fn(NS, _preload_content=False)
        except ApiException as e:
            if e.status == 404:  # the emulator knows a kind only once one was created
                return []
            raise
        return list(json.loads(resp.data).get("items") or [])

    def requests_to(self, method: str, path_suffix: str) -> int:
        """How many `method` requests ended with `path_suffix` (e.g. POST .../pods)."""
        return sum(
            1
            for r in list(self.emulator)
            if str(r.method).rsplit(".", 1)[-1] == method and str(r.url.path).endswith(path_suffix)
        )


class FakeKubelet:
    """Plays the kubelet (and the Job controller) for every pod and Job in the namespace."""

    def __init__(
        self,
        api: FakeApiServer,
        root: Path,
        behaviour: Behaviour | None = None,
        *,
        registry: FakeRegistry | None = None,
        build_fails: bool = False,
    ) -> None:
        self.api = api
        self.root = root
        self.behaviour = behaviour or (lambda pod, seen: "run")
        self.registry = registry
        self.build_fails = build_fails
        self.seen: dict[str, int] = {}
        self.modes: list[tuple[str, str]] = []  # (pod name, mode) in order
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._handled: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="fake-kubelet")
        self.errors: list[str] = []
        #: "hold_then_run" pods run once this is set.
        self.release = threading.Event()

    def __enter__(self) -> FakeKubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for proc in self.procs.values():
            _stop(proc)

    def _loop(self) -> None:
        core, batch = self.api.core(), self.api.batch()
        while not self._stop.is_set():
            try:
                self._tick(core, batch)
            except Exception as e:  # keep playing; the test sees the errors
                self.errors.append(repr(e))
            self._stop.wait(0.1)

    def _tick(self, core: client.CoreV1Api, batch: client.BatchV1Api) -> None:
        live = set()
        for pod in self.api.pods():
            meta = pod["metadata"]
            name = meta["name"]
            live.add(name)
            if pod.get("status") or "job-name" in (meta.get("labels") or {}):
                continue  # already played (a new pod has no status until its kubelet sets one)
            old = self.procs.pop(name, None)
            if old:
                _stop(old)  # the earlier pod of that name went while we looked away
            self.seen[name] = self.seen.get(name, 0) + 1
            mode = self.behaviour(pod, self.seen[name])
            self.modes.append((name, mode))
            self._status(name, {"phase": "Pending"})
            threading.Thread(target=self._play, args=(pod, mode), daemon=True).start()
        # A deleted pod's containers are stopped, as a kubelet does.
        for name in list(self.procs):
            if name not in live:
                _stop(self.procs.pop(name))
        for job in self.api.jobs():
            if not job.get("status"):
                self._handled.add(job["metadata"]["name"])
                self.api.batch().patch_namespaced_job_status(
                    job["metadata"]["name"], NS, {"status": {"active": 1}}, _preload_content=False
                )
                threading.Thread(target=self._build, args=(job,), daemon=True).start()

    def _status(self, name: str, status: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            self.api.core().patch_namespaced_pod_status(
                name, NS, {"status": status}, _preload_content=False
            )

    def _play(self, pod: dict[str, Any], mode: str) -> None:
        name = pod["metadata"]["name"]
        image = pod["spec"]["containers"][0]["image"]
        if mode == "run":
            self._run(pod)
        elif mode == "hold":
            self._status(name, {"phase": "Running"})
        elif mode == "hold_then_run":
            self._status(name, {"phase": "Running"})
            self.release.wait()
            self._run(pod)
        elif mode == "oom":
            self._status(name, {"phase": "Running"})
            time.sleep(0.3)
            self.api.logs[name] = b"allocating a very large array\n"
            self._status(name, _terminated("Failed", 137, "OOMKilled", ""))
        elif mode == "evict":
            self._status(name, {"phase": "Running"})
            time.sleep(0.3)
            self._status(
                name,
                {
                    "phase": "Failed",
                    "reason": "Evicted",
                    "message": "The node was low on resource: memory.",
                },
            )
        elif mode == "pull_error":
            self._status(
                name,
                {
                    "phase": "Pending",
                    "containerStatuses": [
                        {
                            "name": "step",
                            "image": image,
                            "ready": False,
                            "restartCount": 0,
                            "state": {
                                "waiting": {
                                    "reason": "ImagePullBackOff",
                                    "message": f'Back-off pulling image "{image}"',
                                }
                            },
                        }
                    ],
                },
            )
        elif mode == "unschedulable":
            self._status(
                name,
                {
                    "phase": "Pending",
                    "conditions": [
                        {
                            "type": "PodScheduled",
                            "status": "False",
                            "reason": "Unschedulable",
                            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                        }
                    ],
                },
            )

    def _run(self, pod: dict[str, Any]) -> None:
        """Run the pod's containers here, with /workspace and /tmp mapped under root/<pod>."""
        name = pod["metadata"]["name"]
        host = self.root / f"{name}-{self.seen[name]}"
        volumes = {"/workspace": host / "workspace", "/tmp": host / "tmp"}
        for d in volumes.values():
            d.mkdir(parents=True, exist_ok=True)
        termination = host / "termination-log"

        def mapped(value: str) -> str:
            if value == "/dev/termination-log":
                return str(termination)
            if value == "/tmp":  # HOME; other /tmp/... values are this host's test paths
                return str(volumes["/tmp"])
            if value == "/workspace" or value.startswith("/workspace/"):
                return str(volumes["/workspace"]) + value[len("/workspace") :]
            return value

        log = bytearray()
        for spec in pod["spec"].get("initContainers", []):
            code = self._container(name, spec, mapped, log)
            if code != 0:
                self.api.logs[name] = bytes(log)
                status = {
                    "phase": "Failed",
                    "initContainerStatuses": [
                        _container_status(spec["name"], "Error", code, log.decode()[-500:])
                    ],
                }
                self._status(name, status)
                return
        log.clear()
        self._status(name, {"phase": "Running"})
        main = pod["spec"]["containers"][0]
        code = self._container(name, main, mapped, log)
        if name not in {p["metadata"]["name"] for p in self.api.pods()}:
            return  # deleted while running: nothing to report
        self.api.logs[name] = bytes(log)
        message = termination.read_text() if termination.exists() else log.decode()[-2000:]
        phase = "Succeeded" if code == 0 else "Failed"
        self._status(name, _terminated(phase, code, "Completed" if code == 0 else "Error", message))

    def _container(
        self, name: str, spec: dict[str, Any], mapped: Callable[[str], str], log: bytearray
    ) -> int:
        env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
        env.update({e["name"]: mapped(e["value"]) for e in spec.get("env", [])})
        command = list(spec["command"])
        if command[0] == "python":
            command[0] = sys.executable  # the "image" is this test's Python environment
        cwd = mapped(spec.get("workingDir") or "/tmp")
        # Its own process group: stopping the "container" stops everything in it.
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        assert proc.stdout is not None
        for chunk in proc.stdout:
            log.extend(chunk)
            self.api.logs[name] = bytes(log)
        return proc.wait()

    def _build(self, job: dict[str, Any]) -> None:
        """The Job controller and kaniko: a build pod, then success (image pushed) or failure."""
        name = job["metadata"]["name"]
        time.sleep(0.3)
        pod_name = f"{name}-x1"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": NS, "labels": {"job-name": name}},
            "spec": job["spec"]["template"]["spec"],
        }
        core = self.api.core()
        with contextlib.suppress(Exception):
            core.create_namespaced_pod(NS, pod, _preload_content=False)
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        image = next(a.split("=", 1)[1] for a in args if a.startswith("--destination="))
        if self.build_fails:
            self.api.logs[pod_name] = (
                b"INFO Unpacking rootfs\nRUN pip install nonexistent-package-xyz\n"
                b"ERROR: No matching distribution found for nonexistent-package-xyz\n"
                b"error building image: exit status 1\n"
            )
            status: dict[str, Any] = {
                "failed": 2,
                "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimit"}],
            }
        else:
            self.api.logs[pod_name] = f"INFO Pushing image to {image}\n".encode()
            if self.registry:
                self.registry.push(image)
            status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
        with contextlib.suppress(Exception):
            self.api.batch().patch_namespaced_job_status(
                name, NS, {"status": status}, _preload_content=False
            )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _container_status(name: str, reason: str, code: int, message: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": "img",
        "imageID": "img@sha256:0",
        "ready": False,
        "restartCount": 0,
        "state": {"terminated": {"exitCode": code, "reason": reason, "message": message}},
    }


def _terminated(phase: str, code: int, reason: str, message: str) -> dict[str, Any]:
    return {"phase": phase, "containerStatuses": [_container_status("step", reason, code, message)]}


class FakeRegistry:
    """Answers HEAD /v2/<repo>/manifests/<tag>: 200 for pushed images, else 404."""

    def __init__(self) -> None:
        self.images: set[str] = set()
        self.heads: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                outer.heads.append(self.path)
                parts = self.path.split("/manifests/")
                repo, tag = parts[0].removeprefix("/v2/"), parts[-1]
                self.send_response(200 if f"{repo}:{tag}" in outer.images else 404)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeRegistry:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()

    def push(self, image: str) -> None:
        self.images.add(image.removeprefix(self.host + "/"))
