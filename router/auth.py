"""Bearer-key checks: client keys (stored as sha256 digests) for /v1, the admin key for /admin."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from router.errors import AuthenticationError
from router.settings import AuthConfig


def hash_key(key: str) -> str:
    """The sha256 hex digest under which a client key is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class KeyChecker:
    """Checks client and admin keys against the configuration."""

    def __init__(self, config: AuthConfig) -> None:
        self.client_hashes = {digest.lower() for digest in config.client_key_hashes}
        self.admin_key = config.admin_key.get_secret_value() if config.admin_key else None

    def client(self, request: Request) -> str | None:
        """Return the caller's key id (a digest prefix), or None when client keys are not configured."""
        if not self.client_hashes:
            return None
        token = bearer_token(request)
        if token is None:
            raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
        digest = hash_key(token)
        if not any(hmac.compare_digest(digest, known) for known in self.client_hashes):
            raise AuthenticationError("invalid API key")
        return digest[:12]

    def admin(self, request: Request) -> str:
        """Require the admin key (when one is configured); return the actor name for the audit trail."""
        if self.admin_key is None:
            return "local-admin"
        token = bearer_token(request)
        if token is None or not hmac.compare_digest(token, self.admin_key):
            raise AuthenticationError("admin endpoints need 'Authorization: Bearer <admin key>'")
        return "admin:" + hash_key(token)[:8]
