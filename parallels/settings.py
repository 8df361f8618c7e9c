"""Settings, read once at each process's edge (CLI, worker, API factory) and passed down."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from parallels.naming import CONTROL_QUEUE
from parallels.pods import ClusterConfig


def config_file() -> Path:
    """$PARALLELS_CONFIG, else $XDG_CONFIG_HOME/parallels/config.toml (~/.config by default)."""
    explicit = os.environ.get("PARALLELS_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "parallels" / "config.toml"


def _default_slots() -> int:
    return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """Every setting comes from, highest first: arguments (CLI flags), PARALLELS_* environment
    variables, the config file (`config_file()`, TOML, keys are the field names), defaults."""

    model_config = SettingsConfigDict(env_prefix="PARALLELS_", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return init_settings, env_settings, toml, file_secret_settings

    #: Where the embedded stack keeps its databases, artifacts, caches and work dirs.
    state_dir: Path = Field(default_factory=lambda: Path.cwd() / ".parallels")
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    mlflow_port: int = 5000
    task_queue: str = CONTROL_QUEUE
    #: TLS to the Temporal frontend (implied by any setting below but the codec's).
    temporal_tls: bool = False
    #: CA that signed the Temporal server's certificate (default: the system's roots).
    temporal_tls_ca_file: Path | None = None
    #: Client certificate and key for mutual TLS (both or neither).
    temporal_tls_cert_file: Path | None = None
    temporal_tls_key_file: Path | None = None
    #: Name to verify the server's certificate against, when it differs from the address.
    temporal_tls_server_name: str | None = None
    #: API key (Temporal Cloud); sent as a bearer token over TLS.
    temporal_api_key: SecretStr | None = None
    #: Payload encryption: base64 AES-256 keys, comma separated, the first one encrypts
    #: (docs/deployment.md). Every client and worker of a namespace needs the same keys.
    codec_keys: SecretStr | None = None
    #: The same as a file (one key per line), e.g. a mounted Kubernetes secret.
    codec_keys_file: Path | None = None
    #: `parallels codec-server`: where it listens, and the web console origins it answers.
    codec_host: str = "127.0.0.1"
    codec_port: int = Field(default=8081, ge=1, le=65535)
    codec_cors_origins: str = "http://localhost:8233,http://127.0.0.1:8233"
    #: Concurrent local partitions per worker (default: the number of cores).
    local_slots: int = Field(default_factory=_default_slots, ge=1)
    #: Concurrent partitions (pods awaited) and image builds per Kubernetes cluster worker.
    kube_slots: int = Field(default=200, ge=1)
    #: Upper bound on a node's `parallelism`.
    max_parallelism: int = Field(default=1000, ge=1)
    #: Seconds between heartbeats of a running partition.
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    #: How long a node waits for a worker to poll its cluster's task queue before it fails.
    cluster_wait_seconds: float = Field(default=120.0, ge=0)
    #: Keep partition work directories after success (they are always kept after a failure).
    keep_workdirs: bool = False
    #: Workflow tasks (DAG and node workflows) a control worker runs at once.
    worker_max_workflow_tasks: int = Field(default=100, ge=1)
    #: Bookkeeping activities (MLflow runs, planning) a control worker runs at once.
    worker_max_control_activities: int = Field(default=100, ge=1)
    #: On SIGTERM, how long running activities get to finish before the worker leaves them to
    #: Temporal (which hands them to another worker after their heartbeat timeout).
    worker_shutdown_seconds: float = Field(default=30.0, ge=0)
    #: Warn, with the stack that blocks it, when the worker's event loop has not turned for
    #: this long (heartbeats and workflow tasks wait meanwhile); 0: off.
    worker_loop_stall_seconds: float = Field(default=10.0, ge=0)
    #: Serve GET /healthz on this port (Kubernetes probes); none: no health endpoint.
    worker_health_port: int | None = Field(default=None, ge=1, le=65535)
    #: Address of that endpoint ("0.0.0.0" in a pod, where the kubelet probes it).
    worker_health_host: str = "127.0.0.1"

    #: Execution targets this deployment knows (comma separated); `local` is built in.
    clusters: str = "local"
    #: Kubernetes clusters ([[kube_clusters]] tables in the config file, or JSON in
    #: PARALLELS_KUBE_CLUSTERS); each is also a known execution target.
    kube_clusters: list[ClusterConfig] = Field(default_factory=list)

    # --- REST API ---
    #: SQLAlchemy URL of the template store (default: SQLite under the state dir).
    database_url: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    #: Bearer tokens, "token:user" or "token:user:admin", comma separated.
    api_tokens: str = ""
    #: A file of tokens, one "token user [admin]" per line ('#' comments).
    api_tokens_file: Path | None = None
    #: Serve without authentication (the embedded stack only; logged loudly).
    api_open: bool = False
    #: Where the CLI finds the API, and the token it sends.
    api_url: str = "http://127.0.0.1:8000"
    api_token: str | None = None
    #: Largest request body the API accepts.
    api_max_body_bytes: int = Field(default=1_000_000, ge=1024)
    #: Browser origins allowed to call the API cross-origin (comma separated); none by default.
    #: The MLflow tab needs none: it calls the API through its own server.
    api_cors_origins: str = ""

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    @property
    def work_dir(self) -> Path:
        return self.state_dir / "work"

    @property
    def cluster_names(self) -> list[str]:
        names = [c.strip() for c in self.clusters.split(",") if c.strip()] or ["local"]
        return names + [c.name for c in self.kube_clusters if c.name not in names]

    def kube_cluster(self, name: str) -> ClusterConfig:
        """The configured Kubernetes cluster `name`; ValueError telling how to add it."""
        found = next((c for c in self.kube_clusters if c.name == name), None)
        if found is None:
            known = ", ".join(c.name for c in self.kube_clusters) or "none"
            raise ValueError(
                f"cluster '{name}' is not configured (Kubernetes clusters configured: {known}); "
                "add it to kube_clusters in the config file (docs/kubernetes.md)"
            )
        return found

    @property
    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.state_dir / 'parallels.db').resolve()}"

    @property
    def temporal_ui_url(self) -> str:
        host = self.temporal_address.rsplit(":", 1)[0]
        return f"http://{host}:{self.temporal_ui_port}"
