"""Key checks: client keys (stored as sha256 digests) for /v1, the admin key for /admin.

The admin key is accepted as ``Authorization: Bearer <key>`` (API clients, the dashboard's form) or as
the password of HTTP Basic credentials (any user name), which is how a browser opens the dashboard page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets

from fastapi import Request

from router.core.errors import AuthenticationError, PermissionDeniedError
from router.settings import AuthConfig, SettingsError


def hash_key(key: str) -> str:
    """The sha256 hex digest under which a client key is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random key (``fr-`` + 43 URL-safe characters, 256 bits)."""
    return "fr-" + secrets.token_urlsafe(32)


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison that also accepts non-ASCII input."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic …`` header, if any."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


_ACTOR_NAME = re.compile(r"[^A-Za-z0-9_.@+-]")
CLIENT_NAME = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")


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
        self.names = {digest.lower(): name for name, digest in config.client_keys.items()}
        self.client_hashes = {digest.lower() for digest in config.client_key_hashes} | set(self.names)
        malformed = [d for d in self.client_hashes if not re.fullmatch(r"[0-9a-f]{64}", d)]
        if malformed:
            raise SettingsError(
                "auth.client_key_hashes and auth.client_keys must hold sha256 hex digests (64 hex characters); "
                f"got {malformed[0][:20]!r}. Make one with `frugal keys hash`.")
        bad_names = [n for n in config.client_keys if not CLIENT_NAME.fullmatch(n)]
        if bad_names:
            raise SettingsError(f"auth.client_keys names must be 1-64 letters, digits or _.@+- ; got {bad_names[0]!r}")
        if len(self.names) != len(config.client_keys):
            raise SettingsError("auth.client_keys gives the same key digest two names")
        self.admin_key = config.admin_key.get_secret_value() if config.admin_key else None
        if self.admin_key is not None and not re.fullmatch(r"[\x21-\x7e]{8,}", self.admin_key):
            raise SettingsError("auth.admin_key must be at least 8 printable ASCII characters without spaces "
                                "(HTTP headers carry it); make one with `frugal keys new`")

    def client(self, request: Request) -> str | None:
        """The caller's key id: its name in ``auth.client_keys``, else a digest prefix; None without client keys."""
        if not self.client_hashes:
            return None
        token = bearer_token(request)
        if token is None:
            raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
        digest = hash_key(token)
        if not any(_same(digest, known) for known in self.client_hashes):
            raise AuthenticationError("invalid API key")
        return self.names.get(digest, digest[:12])

    def admin(self, request: Request) -> str:
        """Require the admin key (when one is configured); return the actor name for the audit trail.

        The actor is ``admin:<key digest prefix>``, followed by the self-declared name of the Basic user
        or the ``x-frugal-actor`` header when given (anyone holding the key can claim any name).
        """
        if self.admin_key is None:
            remote = remote_address(request)
            if remote is not None:
                raise PermissionDeniedError(
                    f"the admin API has no admin key, so it only answers this machine; {remote} is not local. "
                    "Set auth.admin_key (FRUGAL_AUTH__ADMIN_KEY) to use it from elsewhere or behind a proxy")
            return _actor("local-admin", request.headers.get("x-frugal-actor"))
        token = bearer_token(request)
        claimed = request.headers.get("x-frugal-actor")
        if token is None:
            basic = basic_credentials(request)
            if basic is not None:
                claimed, token = claimed or basic[0], basic[1]
        if token is None or not _same(token, self.admin_key):
            raise AuthenticationError("admin endpoints need the admin key: 'Authorization: Bearer <admin key>'")
        return _actor("admin:" + hash_key(token)[:8], claimed)


def remote_address(request: Request) -> str | None:
    """The first non-loopback address among the peer and any proxy-forwarded client, or None if all are local.

    Only IP addresses count: a Unix-socket peer or an in-process test transport is local. This backs the
    bind-address check (``Settings.check_safe_bind``) for servers started some other way, or behind a
    reverse proxy on the same machine, which forwards the real client in ``X-Forwarded-For``/``Forwarded``.
    """
    candidates = [request.client.host] if request.client else []
    candidates += [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",")]
    candidates += [match.strip('"[]') for match in _FORWARDED_FOR.findall(request.headers.get("forwarded", ""))]
    for host in candidates:
        if not host:
            continue
        if host.count(":") == 1:  # IPv4 with a port
            host = host.split(":", 1)[0]
        try:
            address = ipaddress.ip_address(host.rsplit("%", 1)[0])
        except ValueError:  # "unknown", an obfuscated identifier, a test transport's name
            continue
        if not address.is_loopback:
            return host
    return None


_FORWARDED_FOR = re.compile(r"for=(\"?\[?[0-9A-Fa-f:.]+\]?\"?)", re.IGNORECASE)


def _actor(base: str, claimed: str | None) -> str:
    name = _ACTOR_NAME.sub("", claimed or "")[:64]
    return f"{base} ({name})" if name else base
