"""Encrypting payload codec: workflow inputs, results and activity arguments (parameters may hold
secrets) reach Temporal's history only as AES-256-GCM ciphertext.

Keys are base64 strings of 32 random bytes (`openssl rand -base64 32`). The first key encrypts;
every key decrypts, so a key is rotated by putting a new one in front and dropping the old one
once no running or retained history needs it. Each payload names the key it was sealed with.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
NONCE_BYTES = 12


class CodecKeyError(ValueError):
    """A key that is not base64 of 32 bytes, or a payload sealed with an unknown key."""


def parse_keys(text: str) -> list[bytes]:
    """Comma- or newline-separated base64 keys, the encrypting one first."""
    keys = []
    for i, part in enumerate(p.strip() for p in text.replace("\n", ",").split(",")):
        if not part:
            continue
        try:
            key = base64.b64decode(part, validate=True)
        except binascii.Error as e:
            raise CodecKeyError(f"codec key #{i + 1} is not base64: {e}") from None
        if len(key) != 32:
            raise CodecKeyError(
                f"codec key #{i + 1} is {len(key)} bytes; AES-256 needs 32 "
                "(make one with `openssl rand -base64 32`)"
            )
        keys.append(key)
    if not keys:
        raise CodecKeyError("no codec key given")
    return keys


def key_id(key: bytes) -> str:
    """A short, non-secret name of a key (stored beside each payload)."""
    return hashlib.sha256(b"parallels-codec:" + key).hexdigest()[:16]


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise CodecKeyError("no codec key given")
        self._encrypt_id = key_id(keys[0])
        self._ciphers = {key_id(k): AESGCM(k) for k in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self._encrypt_id]
        out = []
        for p in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, p.SerializeToString(), self._encrypt_id.encode())
            out.append(
                Payload(
                    metadata={"encoding": ENCODING, "encryption-key-id": self._encrypt_id.encode()},
                    data=nonce + sealed,
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding", b"") != ENCODING:
                out.append(p)  # written before the codec was turned on: still readable
                continue
            kid = p.metadata.get("encryption-key-id", b"").decode()
            cipher = self._ciphers.get(kid)
            if cipher is None:
                raise CodecKeyError(
                    f"payload sealed with codec key {kid!r}, which is not among the keys given"
                )
            try:
                plain = cipher.decrypt(p.data[:NONCE_BYTES], p.data[NONCE_BYTES:], kid.encode())
            except InvalidTag:
                raise CodecKeyError(
                    f"payload under codec key {kid!r} fails authentication"
                ) from None
            decoded = Payload()
            decoded.ParseFromString(plain)
            out.append(decoded)
        return out
