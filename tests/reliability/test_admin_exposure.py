"""Regressions from the attack run of issue 25, over real HTTP: forwarded headers (3), what anonymous callers see (9).

(3) Without an admin key the admin API answers only this machine, but only the first ``Forwarded`` line and
``X-Forwarded-For`` were read: a second ``Forwarded`` line, or a proxy that sets only ``X-Real-IP`` (or
``True-Client-IP``, ``CF-Connecting-IP``), made a remote caller local. (9) ``/metrics`` and ``/openapi.json``
were open whatever the keys, and ``/healthz`` showed absolute paths (index, spool) to anyone.
The live servers' peer is 127.0.0.1, so every header below reaches the check as a proxy on this machine would send it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from router.auth import hash_key
from router.settings import SettingsError
from tests.conftest import LiveServer, echo_settings

ADMIN_KEY = "exposure-admin-key-0123"
CLIENT_KEY = "exposure-client-key-4567"
REMOTE = "203.0.113.5"


def get(live: LiveServer, path: str, headers: Any = None) -> httpx.Response:
    """A GET over real HTTP that sends exactly ``headers`` (no proxy from the environment adds any)."""
    with httpx.Client(base_url=live.url, timeout=30, trust_env=False) as client:
        return client.get(path, headers=headers)


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"ops:{password}".encode()).decode()


@pytest.fixture(scope="module")
def untrusted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """No admin key, no trusted proxy; client keys set (so /v1 needs one) and the exposure settings at their defaults."""
    from router.app import create_app

    root = Path(tmp_path_factory.mktemp("untrusted"))
    with LiveServer(create_app(echo_settings(root, auth={"client_keys": {"team": hash_key(CLIENT_KEY)}}))) as live:
        yield live


@pytest.fixture(scope="module")
def trusted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    """No admin key; 127.0.0.1 (where the test's requests come from) is a trusted reverse proxy."""
    from router.app import create_app

    root = Path(tmp_path_factory.mktemp("trusted"))
    with LiveServer(create_app(echo_settings(root, auth={"trusted_proxies": ["127.0.0.1", "::1/128"]}))) as live:
        yield live, root


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    """Admin and client keys, /metrics and the docs behind them, a real tantivy index and the ledger spool."""
    from backends.search.ingest import ingest_paths
    from router.app import create_app
    from tests.backends.search.conftest import write_corpus

    root = Path(tmp_path_factory.mktemp("keyed"))
    ingest_paths(root / "data" / "index", [write_corpus(root)], progress=False)
    auth = {"admin_key": ADMIN_KEY, "client_keys": {"team": hash_key(CLIENT_KEY)},
            "metrics_require_key": True, "docs_require_key": True}
    with LiveServer(create_app(echo_settings(root, search={"backend": "tantivy"}, auth=auth))) as live:
        yield live, root


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["type"] == "permission_error"
    assert "auth.admin_key" in error["message"] and "auth.trusted_proxies" in error["message"]


# (3) Forwarded headers and the keyless admin


@pytest.mark.parametrize("headers", [
    [("forwarded", "for=127.0.0.1"), ("forwarded", f"for={REMOTE}")],  # only the first line was read: 200
    [("x-real-ip", REMOTE)],
    [("true-client-ip", REMOTE)],
    [("cf-connecting-ip", REMOTE)],
    [("x-client-ip", REMOTE)],
    [("x-forwarded-for", "127.0.0.1")],           # a loopback chain, but from a proxy nobody said to trust
    [("forwarded", "for=unknown")],
    [("x-forwarded-proto", "https")],             # no address at all, but only a proxy sets it
], ids=["two-forwarded-lines", "x-real-ip", "true-client-ip", "cf-connecting-ip", "x-client-ip",
        "xff-loopback-untrusted", "forwarded-unknown", "x-forwarded-proto"])
def test_a_forwarding_header_from_an_untrusted_peer_is_not_local(untrusted: LiveServer,
                                                                 headers: list[tuple[str, str]]) -> None:
    assert get(untrusted, "/admin/thresholds").status_code == 200  # the same peer without the header is local
    assert_refused(get(untrusted, "/admin/thresholds", headers))


@pytest.mark.parametrize("headers", [
    [],
    [("x-forwarded-for", "127.0.0.1")],
    [("x-forwarded-for", "::1, 127.0.0.1"), ("x-forwarded-proto", "https"), ("via", "1.1 nginx")],
    [("forwarded", 'for=127.0.0.1;proto=https'), ("forwarded", 'for="[::1]:4711"')],
    [("x-real-ip", "127.0.0.1"), ("x-forwarded-for", "127.0.0.1:51234")],
], ids=["no-header", "xff-loopback", "xff-chain-and-proto", "two-forwarded-lines", "x-real-ip-and-xff"])
def test_a_trusted_proxy_forwarding_only_loopback_clients_is_local(trusted: tuple[LiveServer, Path],
                                                                   headers: list[tuple[str, str]]) -> None:
    live, _root = trusted
    response = get(live, "/admin/thresholds", headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("headers", [
    [("x-forwarded-for", f"{REMOTE}, 127.0.0.1")],
    [("forwarded", "for=127.0.0.1"), ("forwarded", f"for={REMOTE}")],
    [("forwarded", f'for=127.0.0.1, for="{REMOTE}:443"')],
    [("x-forwarded-for", "127.0.0.1"), ("x-real-ip", REMOTE)],
    [("x-forwarded-for", "127.0.0.1"), ("cf-connecting-ip", REMOTE)],
    [("x-forwarded-for", f"::ffff:{REMOTE}")],
    [("forwarded", "for=unknown")],
    [("forwarded", "for=_hidden")],
], ids=["xff-chain", "second-forwarded-line", "forwarded-element", "x-real-ip", "cf-connecting-ip",
        "v4-mapped", "unknown", "obfuscated"])
def test_a_trusted_proxy_forwarding_any_other_client_is_not_local(trusted: tuple[LiveServer, Path],
                                                                  headers: list[tuple[str, str]]) -> None:
    live, _root = trusted
    assert_refused(get(live, "/admin/thresholds", headers))


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"auth\.trusted_proxies: 'localhost' is not an IP address"):
        echo_settings(tmp_path, auth={"trusted_proxies": ["127.0.0.1", "localhost"]})
    settings = echo_settings(tmp_path, auth={"trusted_proxies": ["127.0.0.0/8", "::1"]})
    assert [str(n) for n in settings.auth.proxy_networks()] == ["127.0.0.0/8", "::1/128"]


# (9) What anonymous callers see


def test_metrics_and_docs_stay_open_by_default_even_with_client_keys(untrusted: LiveServer) -> None:
    assert get(untrusted, "/v1/models").status_code == 401  # the keys are in force
    for path in ("/metrics", "/openapi.json", "/docs", "/redoc"):
        assert get(untrusted, path).status_code == 200, path


@pytest.mark.parametrize("path", ["/metrics", "/openapi.json", "/docs", "/redoc"])
def test_metrics_and_docs_need_a_key_when_configured(keyed: tuple[LiveServer, Path], path: str) -> None:
    live, _root = keyed
    for authorization in (None, "Bearer wrong-key-0000", basic("wrong"), "Bearer"):
        response = get(live, path, {"authorization": authorization} if authorization else None)
        assert response.status_code == 401, (path, authorization, response.text)
        assert response.json()["error"]["type"] == "authentication_error"
        assert "require_key" in response.json()["error"]["message"]
        assert response.headers["www-authenticate"].startswith("Basic")
    for authorization in (f"Bearer {CLIENT_KEY}", f"Bearer {ADMIN_KEY}", basic(ADMIN_KEY)):
        assert get(live, path, {"authorization": authorization}).status_code == 200, (path, authorization)


def strings(value: Any) -> list[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, dict):
        return [*value, *(s for item in value.values() for s in strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return [value] if isinstance(value, str) else []


def assert_no_paths(report: dict[str, Any], root: Path) -> None:
    leaked = [s for s in strings(report) if s.startswith("/") or str(root) in s or "://" in s]
    assert not leaked, leaked


def test_healthz_shows_no_paths_to_anonymous_callers_and_all_to_the_admin(keyed: tuple[LiveServer, Path]) -> None:
    live, root = keyed
    for headers in (None, {"authorization": f"Bearer {CLIENT_KEY}"}, {"authorization": "Bearer wrong-key-0000"}):
        public = get(live, "/healthz", headers)
        assert public.status_code == 200
        report = public.json()
        assert report["status"] == "ok" and report["tiers"]["search"] == {
            "ready": True, "backend": "tantivy", "warming": False, "capabilities": []}
        assert report["ledger"]["spooling"] is False and report["ledger"]["spooled_rows"] == 0
        assert set(report["ledger"]) <= {"status", "spooling", "spooled_rows", "stalled_s"}
        assert_no_paths(report, root)
    for authorization in (f"Bearer {ADMIN_KEY}", basic(ADMIN_KEY)):
        full = get(live, "/healthz", {"authorization": authorization}).json()
        assert str(root / "data" / "index") in full["tiers"]["search"]["detail"]
        assert full["ledger"]["spool"].startswith(str(root))


def test_healthz_details_follow_the_keyless_admin_rule(trusted: tuple[LiveServer, Path]) -> None:
    live, root = trusted
    local = get(live, "/healthz").json()  # this machine may use the admin API, so it sees the details
    assert local["ledger"]["spool"].startswith(str(root))
    forwarded = get(live, "/healthz", {"x-forwarded-for": REMOTE}).json()  # a remote client through the proxy
    assert forwarded["status"] == "ok"
    assert_no_paths(forwarded, root)
