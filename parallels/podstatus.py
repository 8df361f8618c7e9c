"""What a pod's status means for the user: running, done, or failed and why. Pure.

Works on the pod as a plain dict (the API's JSON), so it is tested without a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Phase = Literal["pending", "running", "succeeded", "failed"]

_PULL = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_BROKEN_CONFIG = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


@dataclass(frozen=True)
class PodState:
    phase: Phase
    #: For failures: a short cause (OOMKilled, Evicted, ImagePullBackOff, Unschedulable, ...).
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    #: Infrastructure, not the step: a retry on a new pod may well succeed.
    retryable: bool = False
    #: The pod could not start (image, scheduling, source, config): no retry helps until the
    #: user changes something.
    setup: bool = False


def classify(
    pod: dict[str, Any],
    *,
    pending_for: float = 0.0,
    unschedulable_after: float = 600.0,
    image_pull_after: float = 180.0,
) -> PodState:
    """`pending_for`: seconds the pod has been waiting to run, to give up on one that cannot be
    scheduled or whose image cannot be pulled (Kubernetes itself keeps trying forever)."""
    status = pod.get("status") or {}
    phase = status.get("phase", "Pending")
    reason = status.get("reason") or ""
    if reason in ("Evicted", "Preempting", "Terminated", "NodeLost", "Shutdown"):
        return PodState("failed", reason, status.get("message", ""), retryable=True)
    if reason == "DeadlineExceeded":
        return PodState("failed", reason, "the node's timeout passed while the pod ran")

    for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (c.get("state") or {}).get("waiting") or {}
        why = waiting.get("reason", "")
        if why in _PULL:
            message = f"cannot pull image {c.get('image', '')}: {waiting.get('message', '')}"
            # A registry hiccup heals on the kubelet's own retries; a wrong name does not.
            if why == "InvalidImageName" or pending_for >= image_pull_after:
                return PodState("failed", why, message.strip(), setup=True)
            return PodState("pending", why, message.strip())
        if why in _BROKEN_CONFIG:
            return PodState("failed", why, waiting.get("message", ""), setup=True)
    for c in status.get("initContainerStatuses") or []:
        done = (c.get("state") or {}).get("terminated") or {}
        if done and done.get("exitCode", 0) != 0:
            return PodState(
                "failed",
                "SourceFetchFailed",
                f"fetching the project source failed (exit {done.get('exitCode')}): "
                f"{done.get('message', '')}".strip(),
                exit_code=done.get("exitCode"),
                setup=True,
            )

    if phase == "Succeeded":
        return PodState("succeeded", exit_code=0)
    if phase == "Failed":
        for c in status.get("containerStatuses") or []:
            done = (c.get("state") or {}).get("terminated") or {}
            if done:
                code = done.get("exitCode")
                why = done.get("reason", "")
                if why == "OOMKilled":
                    return PodState(
                        "failed",
                        "OOMKilled",
                        "the step used more memory than its limit (resources.memory)",
                        exit_code=code,
                    )
                return PodState("failed", why or "Error", done.get("message", ""), exit_code=code)
        return PodState("failed", reason or "Failed", status.get("message", ""), retryable=True)
    if phase == "Running":
        return PodState("running")

    for cond in status.get("conditions") or []:
        unschedulable = (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        )
        if not unschedulable:
            continue
        if pending_for >= unschedulable_after:
            return PodState(
                "failed",
                "Unschedulable",
                f"no node can run the pod after {int(pending_for)}s: "
                f"{cond.get('message', '')} (check the node's resources: cpu, memory, gpu, "
                "and the cluster's node selector and tolerations)",
                setup=True,
            )
        return PodState("pending", "Unschedulable", cond.get("message", ""))
    return PodState("pending")
