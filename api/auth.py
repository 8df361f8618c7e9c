"""Bearer-token authentication: tokens from settings, each mapped to a user."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from pathlib import Path

from parallels.errors import ParallelsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class User:
    name: str
    admin: bool = False


ANONYMOUS = User("anonymous", admin=True)


class Unauthorized(ParallelsError):
    pass


def parse_tokens(inline: str, file: Path | None) -> dict[str, User]:
    """'tok:alice,tok2:bob:admin' and/or a file of 'token user [admin]' lines."""
    tokens: dict[str, User] = {}
    for item in filter(None, (x.strip() for x in inline.split(","))):
        parts = item.split(":")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise ValueError(
                "PARALLELS_API_TOKENS entries look like token:user or token:user:admin"
            )
        tokens[parts[0]] = User(parts[1], admin=len(parts) > 2 and parts[2] == "admin")
    if file is not None:
        for n, line in enumerate(file.read_text().splitlines(), 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) < 2:
                raise ValueError(f"{file}:{n}: expected 'token user [admin]'")
            tokens[fields[0]] = User(fields[1], admin=fields[2:3] == ["admin"])
    return tokens


class Authenticator:
    def __init__(self, tokens: dict[str, User], *, open_mode: bool) -> None:
        if not tokens and not open_mode:
            raise ValueError(
                "no API tokens configured: set PARALLELS_API_TOKENS or PARALLELS_API_TOKENS_FILE "
                "(or PARALLELS_API_OPEN=true for a local embedded stack)"
            )
        self._tokens = list(tokens.items())
        self.open_mode = open_mode and not tokens
        if self.open_mode:
            log.warning("API AUTHENTICATION IS OFF (open mode): anyone who can reach it is admin")

    def user(self, authorization: str | None) -> User:
        if self.open_mode:
            return ANONYMOUS
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
        found: User | None = None
        # Compare against every token in constant time, so timing tells nothing about them.
        for known, user in self._tokens:
            if hmac.compare_digest(known.encode(), token.encode()):
                found = user
        if found is None:
            raise Unauthorized("invalid token")
        return found
