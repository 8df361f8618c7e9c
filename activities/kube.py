"""The Kubernetes API as the cluster workers use it: plain dicts in and out, typed errors.

The official (blocking) client is called from threads by the activities. Objects are read as raw
JSON (`_preload_content=False`): the worker needs a few fields, not the client's strict models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal, cast

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from parallels.errors import ParallelsError, TransientError
from parallels.pods import MANAGED_BY, ClusterConfig


class ClusterAccessError(ParallelsError):
    """The worker may not do something it needs in the cluster (RBAC, credentials)."""


class ClusterRequestRejected(ParallelsError):
    """The API server refused a manifest as invalid."""


def api_client(c: ClusterConfig) -> client.ApiClient:
    """A client for the cluster: its kubeconfig context if one is set, else the in-cluster
    service account, else the current kubeconfig context."""
    try:
        if c.context or c.kubeconfig:
            return cast(
                client.ApiClient,
                config.new_client_from_config(config_file=c.kubeconfig, context=c.context),
            )
        cfg = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=cfg)
        except ConfigException:
            return cast(client.ApiClient, config.new_client_from_config())
        return client.ApiClient(cfg)
    except (ConfigException, OSError) as e:
        raise ClusterAccessError(
            f"cluster '{c.name}': cannot load Kubernetes credentials "
            f"(context={c.context!r}, kubeconfig={c.kubeconfig!r}): {e}"
        ) from e


class Kube:
    """The calls Parallels makes, in one namespace of one cluster."""

    def __init__(self, api: client.ApiClient, cluster: ClusterConfig) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._batch = client.BatchV1Api(api)
        self.cluster = cluster
        self.ns = cluster.namespace

    # --- pods ---
    def create_pod(self, manifest: dict[str, Any]) -> Literal["created", "exists"]:
        return self._create(self._core.create_namespaced_pod, manifest, "pod")

    def read_pod(self, name: str) -> dict[str, Any] | None:
        return self._read(self._core.read_namespaced_pod, name, "pod")

    def delete_pod(self, name: str) -> bool:
        """Delete now (no grace: a cancelled or finished step has nothing to flush)."""
        return self._delete(self._core.delete_namespaced_pod, name, "pod", grace_period_seconds=0)

    def pod_log(self, name: str, container: str, limit_bytes: int = 50_000_000) -> str:
        # 400: the container never started; 404: no such pod. Either way, no log.
        resp = self._request(
            self._core.read_namespaced_pod_log,
            name,
            self.ns,
            container=container,
            limit_bytes=limit_bytes,
            action=("read the log of", "pod", name),
            absent=(400, 404),
        )
        return "" if resp is None else bytes(resp.data).decode(errors="replace")

    def watch_namespace_pods(self, timeout_seconds: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event type, pod) for Parallels' pods in the namespace until the watch times out."""
        w = watch.Watch()
        try:
            for event in w.stream(
                self._core.list_namespaced_pod,
                self.ns,
                label_selector=",".join(f"{k}={v}" for k, v in MANAGED_BY.items()),
                timeout_seconds=timeout_seconds,
                # Also a read timeout, for servers that do not end a watch when asked.
                _request_timeout=(10, timeout_seconds + 5),
                deserialize=False,
            ):
                obj = event.get("object") or event.get("raw_object") or {}
                if isinstance(obj, dict) and event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    yield str(event["type"]), obj
        except ApiException as e:
            raise self._translate(e, "watch", "pods", "*") from e
        except urllib3.exceptions.ReadTimeoutError:
            return  # a quiet watch that ran its time: the caller starts the next one
        except urllib3.exceptions.HTTPError as e:
            raise self._unreachable(e) from e
        finally:
            w.stop()

    # --- image builds ---
    def create_configmap(self, manifest: dict[str, Any]) -> Literal["created", "exists"]:
        return self._create(self._core.create_namespaced_config_map, manifest, "configmap")

    def create_job(self, manifest: dict[str, Any]) -> Literal["created", "exists"]:
        return self._create(self._batch.create_namespaced_job, manifest, "job")

    def read_job(self, name: str) -> dict[str, Any] | None:
        return self._read(self._batch.read_namespaced_job, name, "job")

    def delete_job(self, name: str) -> bool:
        return self._delete(
            self._batch.delete_namespaced_job, name, "job", propagation_policy="Background"
        )

    def job_pods(self, job: str) -> list[dict[str, Any]]:
        resp = self._request(
            self._core.list_namespaced_pod,
            self.ns,
            label_selector=f"job-name={job}",
            action=("list", "pods of job", job),
        )
        items = json.loads(resp.data).get("items") or []
        # Label selectors are a server feature some test servers lack; check it here too.
        return [
            p
            for p in items
            if ((p.get("metadata") or {}).get("labels") or {}).get("job-name") == job
        ]

    def read_secret(self, name: str) -> dict[str, Any] | None:
        return self._read(self._core.read_namespaced_secret, name, "secret")

    # --- plumbing ---
    def _create(self, fn: Any, manifest: dict[str, Any], kind: str) -> Literal["created", "exists"]:
        name = manifest["metadata"]["name"]
        # 409: a retried activity finds what its earlier attempt made.
        resp = self._request(fn, self.ns, manifest, action=("create", kind, name), absent=(409,))
        return "exists" if resp is None else "created"

    def _read(self, fn: Any, name: str, kind: str) -> dict[str, Any] | None:
        resp = self._request(fn, name, self.ns, action=("read", kind, name), absent=(404,))
        return None if resp is None else cast(dict[str, Any], json.loads(resp.data))

    def _delete(self, fn: Any, name: str, kind: str, **kwargs: Any) -> bool:
        action = ("delete", kind, name)
        return self._request(fn, name, self.ns, action=action, absent=(404,), **kwargs) is not None

    def _request(
        self,
        fn: Any,
        *args: Any,
        action: tuple[str, str, str],
        absent: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> Any:
        """`fn`'s raw response, None for an `absent` status; other failures translated."""
        try:
            return fn(*args, _preload_content=False, **kwargs)
        except ApiException as e:
            if e.status in absent:
                return None
            raise self._translate(e, *action) from e
        except urllib3.exceptions.HTTPError as e:
            raise self._unreachable(e) from e

    def _translate(self, e: ApiException, verb: str, kind: str, name: str) -> ParallelsError:
        reason = _reason(e)
        where = f"cluster '{self.cluster.name}', namespace '{self.ns}'"
        if e.status in (401, 403):
            return ClusterAccessError(
                f"{where}: the worker may not {verb} {kind} '{name}' ({e.status}: {reason}); "
                "check its service account's RBAC (docs/kubernetes.md)"
            )
        if e.status in (400, 422):
            return ClusterRequestRejected(f"{where}: {kind} '{name}' was rejected: {reason}")
        if e.status == 404:
            return ClusterAccessError(f"{where}: cannot {verb} {kind} '{name}': {reason}")
        return TransientError(f"{where}: cannot {verb} {kind} '{name}' ({e.status}: {reason})")

    def _unreachable(self, e: Exception) -> TransientError:
        return TransientError(f"cluster '{self.cluster.name}': API server unreachable: {e}")


def _reason(e: ApiException) -> str:
    try:
        body = json.loads(e.body or "{}")
        return str(body.get("message") or e.reason)
    except (ValueError, AttributeError):
        return str(e.reason)
