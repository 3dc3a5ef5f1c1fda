"""Key checks: client keys (stored as sha256 digests) for /v1, the admin key for /admin.

The admin key is accepted as ``Authorization: Bearer <key>`` (API clients, the dashboard's form) or as
the password of HTTP Basic credentials (any user name), which is how a browser opens the dashboard page.
Without an admin key the admin API answers only this machine, and headers a proxy sets are believed only from
``auth.trusted_proxies`` (``not_local``). ``/metrics`` and the API docs take a client or the admin key when
``auth.metrics_require_key`` / ``auth.docs_require_key`` say so (``KeyChecker.reader``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Sequence

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
        self.trusted_proxies = config.proxy_networks()

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
            reason = not_local(request, self.trusted_proxies)
            if reason is not None:
                raise PermissionDeniedError(
                    f"the admin API has no admin key, so it only answers this machine; {reason}. "
                    "Set auth.admin_key (FRUGAL_AUTH__ADMIN_KEY) to use it from elsewhere or behind any proxy, or "
                    "list a reverse proxy on this machine in auth.trusted_proxies (FRUGAL_AUTH__TRUSTED_PROXIES) so "
                    "that the loopback clients it forwards count as local")
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

    def is_admin(self, request: Request) -> bool:
        """Whether ``admin`` would let this request in (the admin key, or no key and a local caller)."""
        try:
            self.admin(request)
        except (AuthenticationError, PermissionDeniedError):
            return False
        return True

    def reader(self, request: Request, setting: str) -> None:
        """Require a client key or the admin key (Bearer, or a Basic password) where ``setting`` asks for one."""
        token = bearer_token(request)
        if token is None:
            basic = basic_credentials(request)
            token = basic[1] if basic else None
        if token is not None:
            if self.admin_key is not None and _same(token, self.admin_key):
                return
            digest = hash_key(token)
            if any(_same(digest, known) for known in self.client_hashes):
                return
        if self.admin_key is None and not_local(request, self.trusted_proxies) is None:
            return  # the keyless local admin may read everything
        if self.admin_key is None and not self.client_hashes:
            raise PermissionDeniedError(f"{setting} is on but no key is configured, so only this machine may read "
                                        "this; set auth.client_keys or auth.admin_key")
        raise AuthenticationError(f"{setting} is on: send a client key or the admin key as "
                                  "'Authorization: Bearer <key>'")


#: Headers in which a proxy names the client it forwards; every line of each is read (``Forwarded`` by its ``for=``).
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip", "true-client-ip", "cf-connecting-ip", "x-client-ip",
                      "x-cluster-client-ip", "fastly-client-ip", "x-original-forwarded-for", "x-forwarded",
                      "forwarded-for", "client-ip")
#: Any header only a proxy sets (``Via``, ``X-Forwarded-Proto``, ``X-Forwarded-Host``, …) also marks a request as proxied.
_PROXY_HEADER = re.compile(r"forwarded|client-?ip|connecting-ip|real-ip|^via$")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def not_local(request: Request, trusted: Sequence[Network] = ()) -> str | None:
    """Why the request may not come from this machine, or None when it surely does.

    Local means: the peer is a loopback IP (or no IP at all: a Unix socket, an in-process test transport) and
    either no proxy header is present, or the peer is in ``trusted`` (``auth.trusted_proxies``) and every client
    address in every line of every forwarding header is a loopback IP. A proxy header from an untrusted peer, or
    an unparseable address ("unknown", an obfuscated id) from a trusted one, means "not local".
    """
    peer = request.client.host if request.client else ""
    peer_ip = _address(peer)
    if peer_ip is not None and not peer_ip.is_loopback:
        return f"{peer} is not local"
    proxied = sorted({name.lower() for name in request.headers
                      if name.lower() in FORWARDING_HEADERS or _PROXY_HEADER.search(name.lower())})
    if not proxied:
        return None
    if peer_ip is None or not any(peer_ip in network for network in trusted):
        return f"the request carries {proxied[0]} from {peer or 'a non-IP peer'}, which is not in auth.trusted_proxies"
    for name in FORWARDING_HEADERS:
        for value in request.headers.getlist(name):
            for client in _forwarded_clients(value):
                address = _address(client)
                if address is None:
                    return f"{name} names {client!r}, which is not an IP address"
                if not address.is_loopback:
                    return f"{client} (forwarded by {peer} in {name}) is not local"
    return None


def _forwarded_clients(value: str) -> list[str]:
    """The client addresses of one header line: a comma-separated list, or RFC 7239 elements' ``for=`` values."""
    clients = []
    for element in value.split(","):
        if "=" not in element:
            clients.append(element.strip())
            continue
        for pair in element.split(";"):
            key, _, found = pair.partition("=")
            if key.strip().lower() == "for":
                clients.append(found.strip())
    return clients


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP in ``text`` (quotes, ``[v6]:port``, ``v4:port`` and a zone allowed; v4-mapped v6 as v4), else None."""
    host = text.strip().strip('"')
    if host.startswith("["):
        host = host[1:host.find("]")]
    elif host.count(":") == 1:  # IPv4 with a port
        host = host.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(host.rsplit("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _actor(base: str, claimed: str | None) -> str:
    name = _ACTOR_NAME.sub("", claimed or "")[:64]
    return f"{base} ({name})" if name else base
