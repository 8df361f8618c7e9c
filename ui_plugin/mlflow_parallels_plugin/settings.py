"""The plugin's settings, read from the environment once, where a process starts using it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T", int, float)


class PluginConfigError(ValueError):
    """A setting of the plugin is missing or malformed."""


@dataclass(frozen=True)
class PluginSettings:
    #: Base URL of the Parallels API (without /api/v1), as the MLflow server reaches it.
    api_url: str = "http://127.0.0.1:8000"
    #: Bodies the UI proxy forwards are refused above this size (413), before reaching the API.
    max_body_bytes: int = 1_000_000
    #: Seconds the proxy waits for the API on an ordinary request (event streams are unbounded).
    timeout_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PluginSettings:
        env = os.environ if env is None else env
        url = env.get("PARALLELS_API_URL", cls.api_url).strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise PluginConfigError(
                f"PARALLELS_API_URL must be an http(s) URL of the Parallels API, got {url!r}"
            )
        return cls(
            api_url=url,
            max_body_bytes=_number(env, "PARALLELS_UI_MAX_BODY_BYTES", cls.max_body_bytes, int),
            timeout_seconds=_number(
                env, "PARALLELS_UI_TIMEOUT_SECONDS", cls.timeout_seconds, float
            ),
        )


def _number(env: Mapping[str, str], name: str, default: T, kind: type[T]) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError as e:
        raise PluginConfigError(f"{name} must be a number, got {raw!r}") from e
    if value <= 0:
        raise PluginConfigError(f"{name} must be positive, got {raw!r}")
    return value
