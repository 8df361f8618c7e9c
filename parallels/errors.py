"""Small typed errors shared across layers. Pure.

Boundaries (activities, the API, the CLI) translate library errors into these; activities turn
permanent ones into non-retryable Temporal ApplicationErrors whose `type` is the class name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parallels.validation import Problem


class ParallelsError(Exception):
    """Base of every error this project raises on purpose."""

    #: Whether retrying the same operation can succeed.
    retryable = False


class SpecInvalid(ParallelsError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("invalid DAG spec:\n" + "\n".join(f"  {p}" for p in self.problems))


class ProjectError(ParallelsError):
    """A project cannot be used: bad repo, unknown ref, missing or malformed MLproject."""


class ParameterError(ParallelsError):
    """Entry point parameters do not fit the MLproject."""


class EnvironmentError_(ParallelsError):
    """The execution environment could not be prepared."""


class InputError(ParallelsError):
    """An input cannot be listed or fetched."""


class TransientError(ParallelsError):
    """Something outside us failed in a way worth retrying (network, server restart)."""

    retryable = True


class PartitionFailed(ParallelsError):
    """A partition's command failed; retried until the node's `retries` are used up."""

    def __init__(self, message: str, exit_code: int | None = None, *, final: bool) -> None:
        self.exit_code = exit_code
        self.retryable = not final
        super().__init__(message)


class ConfigError(ParallelsError):
    """Settings that cannot work together, or a file they name that cannot be read."""
