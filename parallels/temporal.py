"""Connecting to Temporal the same way everywhere (CLI, worker, API, tests)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.service import RPCError, TLSConfig

from parallels.codec import CodecKeyError, EncryptionCodec, parse_keys
from parallels.errors import ConfigError
from parallels.settings import Settings

log = logging.getLogger(__name__)

SEARCH_ATTRIBUTES = {
    "ParallelsDag": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "MlflowRunId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "ParallelsOwner": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
}


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic payloads, sealed by the encryption codec when keys are configured."""
    keys_text = None
    if settings.codec_keys is not None:
        keys_text = settings.codec_keys.get_secret_value()
    elif settings.codec_keys_file is not None:
        keys_text = (_read(settings.codec_keys_file, "codec_keys_file") or b"").decode()
    if keys_text is None:
        return pydantic_data_converter
    try:
        codec = EncryptionCodec(parse_keys(keys_text))
    except CodecKeyError as e:
        raise ConfigError(str(e)) from None
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


def connect_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of `Client.connect` for these settings (TLS, mTLS, API key, codec)."""
    s = settings
    if (s.temporal_tls_cert_file is None) != (s.temporal_tls_key_file is None):
        raise ConfigError("mutual TLS needs both temporal_tls_cert_file and temporal_tls_key_file")
    custom = any((s.temporal_tls_ca_file, s.temporal_tls_cert_file, s.temporal_tls_server_name))
    tls: bool | TLSConfig = s.temporal_tls or s.temporal_api_key is not None or custom
    if custom:
        tls = TLSConfig(
            server_root_ca_cert=_read(s.temporal_tls_ca_file, "temporal_tls_ca_file"),
            client_cert=_read(s.temporal_tls_cert_file, "temporal_tls_cert_file"),
            client_private_key=_read(s.temporal_tls_key_file, "temporal_tls_key_file"),
            domain=s.temporal_tls_server_name,
        )
    return {
        "target_host": s.temporal_address,
        "namespace": s.temporal_namespace,
        "tls": tls,
        "api_key": s.temporal_api_key.get_secret_value() if s.temporal_api_key else None,
        "data_converter": data_converter(s),
    }


def _read(path: Path | None, setting: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{setting}: cannot read {path}: {e.strerror}") from None


async def connect(settings: Settings) -> Client:
    options = connect_options(settings)
    try:
        return await Client.connect(**options)
    except RuntimeError as e:  # the core SDK reports connection failures as RuntimeError
        tls = "with TLS" if options["tls"] else "without TLS"
        raise RuntimeError(
            f"cannot connect to Temporal at {settings.temporal_address} ({tls}, namespace "
            f"'{settings.temporal_namespace}'): {e}"
        ) from e


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register our search attributes if missing; workflows upsert them on every run."""
    try:
        have = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        missing = {k: v for k, v in SEARCH_ATTRIBUTES.items() if k not in have.custom_attributes}
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
            )
            log.info("registered search attributes %s", ", ".join(missing))
    except RPCError as e:
        log.warning(
            "could not check/register search attributes %s (%s); register them with "
            "`temporal operator search-attribute create` or runs will fail to start",
            ", ".join(SEARCH_ATTRIBUTES),
            e.message,
        )


async def pollers(
    client: Client,
    namespace: str,
    queue: str,
    kind: TaskQueueType.ValueType = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
) -> int:
    """How many workers polled `queue` lately (Temporal remembers a poller for a few minutes)."""
    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind
        )
    )
    return len({p.identity for p in resp.pollers})
