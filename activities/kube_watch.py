"""One watch of the namespace's pods per worker, fanned out to the partitions awaiting them.

A watch per partition would hold one connection (and one thread) per running pod: a node of a
thousand partitions would need a thousand. Here one thread watches, and each awaiting partition
gets the changes of its pod through an asyncio queue; partitions also re-read their pod now and
then, so a lost event costs seconds, not the run.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from activities.kube import Kube
from parallels.errors import ParallelsError

log = logging.getLogger(__name__)

WATCH_SECONDS = 60
RETRY_SECONDS = 2.0


class PodWatcher:
    def __init__(self, kube: Kube) -> None:
        self._kube = kube
        self._lock = threading.Lock()
        self._subscribers: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any]]] = {}
        self._thread: threading.Thread | None = None

    def subscribe(self, name: str) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        with self._lock:
            self._subscribers[name] = (asyncio.get_running_loop(), queue)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._watch, name=f"pod-watch-{self._kube.ns}", daemon=True
                )
                self._thread.start()
        return queue

    def unsubscribe(self, name: str) -> None:
        with self._lock:
            self._subscribers.pop(name, None)

    def _watch(self) -> None:
        while True:
            with self._lock:
                if not self._subscribers:
                    self._thread = None
                    return  # started again by the next subscriber
            try:
                for kind, pod in self._kube.watch_namespace_pods(WATCH_SECONDS):
                    self._deliver(kind, pod)
            except ParallelsError as e:
                log.warning("pod watch in %s interrupted: %s", self._kube.ns, e)
                time.sleep(RETRY_SECONDS)

    def _deliver(self, kind: str, pod: dict[str, Any]) -> None:
        name = (pod.get("metadata") or {}).get("name", "")
        with self._lock:
            target = self._subscribers.get(name)
        if target is not None:
            loop, queue = target
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, pod))
            except RuntimeError:  # that loop is closed: its partition is gone
                self.unsubscribe(name)
