"""Temporal connection settings (TLS, mTLS, API key) and the payload encryption codec."""

from __future__ import annotations

import base64
import os

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

from parallels.codec import ENCODING, CodecKeyError, EncryptionCodec, parse_keys
from parallels.errors import ConfigError
from parallels.settings import Settings
from parallels.temporal import connect_options


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def settings(**kw: object) -> Settings:
    return Settings(temporal_address="temporal.example.com:7233", **kw)  # type: ignore[arg-type]


def test_plain_connection_by_default():
    opts = connect_options(settings())
    assert opts["target_host"] == "temporal.example.com:7233"
    assert opts["tls"] is False and opts["api_key"] is None
    assert opts["data_converter"] is pydantic_data_converter


def test_api_key_implies_tls_with_system_roots():
    opts = connect_options(settings(temporal_api_key="k-123", temporal_namespace="prod.acct"))
    assert opts["tls"] is True and opts["api_key"] == "k-123"
    assert opts["namespace"] == "prod.acct"
    assert "k-123" not in repr(settings(temporal_api_key="k-123"))  # never printed


def test_mutual_tls_reads_the_files(tmp_path):
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_bytes(f"-- {name} --".encode())
    opts = connect_options(
        settings(
            temporal_tls_ca_file=tmp_path / "ca.pem",
            temporal_tls_cert_file=tmp_path / "client.pem",
            temporal_tls_key_file=tmp_path / "client.key",
            temporal_tls_server_name="temporal.internal",
        )
    )
    tls = opts["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == b"-- ca.pem --"
    assert tls.client_cert == b"-- client.pem --"
    assert tls.client_private_key == b"-- client.key --"
    assert tls.domain == "temporal.internal"


def test_bad_tls_settings_say_what_to_fix(tmp_path):
    (tmp_path / "client.pem").write_text("x")
    with pytest.raises(ConfigError, match="both temporal_tls_cert_file and temporal_tls_key_file"):
        connect_options(settings(temporal_tls_cert_file=tmp_path / "client.pem"))
    with pytest.raises(ConfigError, match=r"temporal_tls_ca_file: cannot read .*missing\.pem"):
        connect_options(settings(temporal_tls_ca_file=tmp_path / "missing.pem"))


def test_codec_keys_from_settings_or_file(tmp_path):
    k = key()
    opts = connect_options(settings(codec_keys=k))
    assert isinstance(opts["data_converter"].payload_codec, EncryptionCodec)
    (tmp_path / "keys").write_text(f"{k}\n{key()}\n")
    assert parse_keys((tmp_path / "keys").read_text())[0] == base64.b64decode(k)
    opts = connect_options(settings(codec_keys_file=tmp_path / "keys"))
    assert isinstance(opts["data_converter"].payload_codec, EncryptionCodec)
    with pytest.raises(ConfigError, match="is 16 bytes; AES-256 needs 32"):
        connect_options(settings(codec_keys=base64.b64encode(b"x" * 16).decode()))
    with pytest.raises(ConfigError, match="not base64"):
        connect_options(settings(codec_keys="not base64!"))


async def test_codec_round_trips_and_hides_the_plaintext():
    codec = EncryptionCodec(parse_keys(key()))
    plain = [Payload(metadata={"encoding": b"json/plain"}, data=b'{"password": "hunter2"}')]
    sealed = await codec.encode(plain)
    assert sealed[0].metadata["encoding"] == ENCODING
    assert b"hunter2" not in sealed[0].SerializeToString()
    assert await codec.decode(sealed) == plain
    assert (await codec.encode(plain))[0].data != sealed[0].data  # a fresh nonce each time


async def test_rotation_decrypts_with_old_keys_and_refuses_unknown_or_tampered():
    old, new = key(), key()
    plain = [Payload(metadata={"encoding": b"json/plain"}, data=b"42")]
    sealed_old = await EncryptionCodec(parse_keys(old)).encode(plain)
    rotated = EncryptionCodec(parse_keys(f"{new},{old}"))
    assert await rotated.decode(sealed_old) == plain
    sealed_new = await rotated.encode(plain)
    assert (
        sealed_new[0].metadata["encryption-key-id"] != sealed_old[0].metadata["encryption-key-id"]
    )
    with pytest.raises(CodecKeyError, match="not among the keys given"):
        await EncryptionCodec(parse_keys(old)).decode(sealed_new)
    tampered = Payload()
    tampered.CopyFrom(sealed_new[0])
    tampered.data = tampered.data[:-1] + bytes([tampered.data[-1] ^ 1])
    with pytest.raises(CodecKeyError, match="fails authentication"):
        await rotated.decode([tampered])
    # Payloads written before the codec was turned on still read.
    assert await rotated.decode(plain) == plain


def test_the_api_refuses_to_start_with_broken_temporal_settings(tmp_path):
    from api.app import create_app
    from api.store import TemplateStore

    s = settings(api_tokens="t:u", temporal_tls_ca_file=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="temporal_tls_ca_file"):
        create_app(s, store=TemplateStore(f"sqlite:///{tmp_path / 'store.db'}"))
