"""Does an image tag exist in its registry? (OCI distribution API: HEAD of the manifest.)

Used to skip a build whose content-hash tag was pushed before. Speaks plain HTTP(S) with basic
credentials or the registry's bearer-token challenge, as registries do.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx

from parallels.errors import EnvironmentError_, TransientError

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def split_ref(image: str) -> tuple[str, str, str]:
    """'host[:port]/path/name:tag' -> (host, repository, tag); the host must be explicit."""
    ref, _, tag = image.rpartition(":")
    host, _, repo = ref.partition("/")
    if not tag or "/" in tag or not repo or not ("." in host or ":" in host or host == "localhost"):
        raise EnvironmentError_(
            f"image '{image}' must be <registry host>/<repository>:<tag>; set the cluster's "
            "registry to a host and path, e.g. registry.example.com/ml"
        )
    return host, repo, tag


def credentials(dockerconfigjson: dict[str, Any] | None, host: str) -> tuple[str, str] | None:
    """Username and password for `host` from a kubernetes.io/dockerconfigjson secret."""
    if not dockerconfigjson:
        return None
    raw = (dockerconfigjson.get("data") or {}).get(".dockerconfigjson")
    if not raw:
        return None
    try:
        auths = json.loads(base64.b64decode(raw)).get("auths") or {}
    except ValueError as e:
        raise EnvironmentError_(f"the registry secret is not a docker config: {e}") from e
    for key, entry in auths.items():
        if re.sub(r"^https?://", "", key).split("/")[0] != host:
            continue
        if entry.get("username"):
            return str(entry["username"]), str(entry.get("password", ""))
        if entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return user, password
    return None


def image_exists(
    image: str,
    *,
    auth: tuple[str, str] | None = None,
    insecure: bool = False,
    timeout: float = 10.0,
) -> bool:
    host, repo, tag = split_ref(image)
    url = f"{'http' if insecure else 'https'}://{host}/v2/{repo}/manifests/{tag}"
    headers = {"Accept": MANIFEST_TYPES}
    try:
        with httpx.Client(timeout=timeout, auth=httpx.BasicAuth(*auth) if auth else None) as http:
            resp = http.head(url, headers=headers)
            challenge = resp.headers.get("www-authenticate", "")
            if resp.status_code == 401 and challenge.lower().startswith("bearer"):
                token = _token(http, challenge)
                resp = http.head(
                    url, headers={**headers, "Authorization": f"Bearer {token}"}, auth=_as_is
                )
    except httpx.HTTPError as e:
        raise TransientError(f"registry {host} unreachable: {e}") from e
    if resp.status_code == 200:
        return True
    if resp.status_code == 404:
        return False
    if resp.status_code in (401, 403):
        raise EnvironmentError_(
            f"registry {host} refused to show {repo}:{tag} ({resp.status_code}); check the "
            "cluster's registry_secret"
        )
    raise TransientError(f"registry {host} answered {resp.status_code} for {repo}:{tag}")


def _token(http: httpx.Client, challenge: str) -> str:
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = params.pop("realm", "")
    if not realm:
        raise TransientError(f"registry token challenge without a realm: {challenge}")
    resp = http.get(realm, params=params)
    if resp.status_code in (401, 403):
        raise EnvironmentError_(f"registry token service {realm} refused the credentials")
    resp.raise_for_status()
    body = resp.json()
    return str(body.get("token") or body.get("access_token") or "")


def _as_is(request: httpx.Request) -> httpx.Request:
    """No client auth: the bearer token header goes out as set."""
    return request
