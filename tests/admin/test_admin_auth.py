"""Authentication: every /admin route (derived from the app, so new ones are covered) needs the admin key."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from router.admin.dashboard import chart_series, client_series, window_start
from router.auth import hash_key
from router.settings import SettingsError
from tests.admin.conftest import ADMIN_KEY, app_client


def flat_routes(app: Any) -> list[Any]:
    """Every route of the app with its full path (FastAPI >= 0.165 nests included routers lazily)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def admin_routes() -> list[tuple[str, str]]:
    """(method, path) of every route the app serves under /admin, from app.routes and the OpenAPI schema."""
    from router.app import create_app
    from tests.conftest import echo_settings

    app = create_app(echo_settings(Path("/nonexistent")))
    found = {(method, route.path) for route in flat_routes(app) if (route.path or "").startswith("/admin")
             for method in (route.methods or set()) - {"HEAD", "OPTIONS"}}
    documented = {(method.upper(), path) for path, item in app.openapi()["paths"].items() if path.startswith("/admin")
                  for method in item}
    assert documented <= found, documented - found
    assert len(found) >= 9, found  # thresholds GET/PUT, history, calibrate, requests, 3 reports, dashboard
    return sorted(found)


ROUTES = admin_routes()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.conftest import echo_settings

    with app_client(echo_settings(tmp_path_factory.mktemp("keyed"), auth={"admin_key": ADMIN_KEY})) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
@pytest.mark.parametrize("authorization", [
    None, "Bearer wrong-key", "Bearer", basic("admin", "wrong"), "Bearer k\u00e9y-\u2603", "Basic !!!notbase64",
    "Token " + ADMIN_KEY,
], ids=["none", "wrong-bearer", "empty-bearer", "wrong-basic", "non-ascii", "bad-basic", "wrong-scheme"])
def test_every_admin_route_refuses_a_missing_or_wrong_key(keyed: Any, method: str, path: str,
                                                          authorization: str | None) -> None:
    headers = {"authorization": authorization.encode("utf-8")} if authorization else {}
    response = keyed.request(method, path, headers=headers)
    assert response.status_code == 401, (method, path, response.text)
    assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_every_admin_route_accepts_the_key(keyed: Any, method: str, path: str) -> None:
    for authorization in ("Bearer " + ADMIN_KEY, basic("ops", ADMIN_KEY)):
        response = keyed.request(method, path, headers={"authorization": authorization})
        # GETs answer; PUT/POST without a body fail validation, which comes after authentication
        assert response.status_code == (200 if method == "GET" else 422), (method, path, response.text)


def test_the_dashboard_challenges_browsers_with_basic_auth(keyed: Any) -> None:
    response = keyed.get("/admin")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="Frugal admin"')
    assert "<svg" not in response.text  # no data without the key


def test_without_an_admin_key_the_admin_api_is_open_on_loopback_only(tmp_path: Any) -> None:
    from router.app import create_app
    from tests.conftest import echo_settings

    with app_client(echo_settings(tmp_path)) as client:
        assert client.get("/admin/thresholds").status_code == 200
        assert client.get("/admin").status_code == 200
    with pytest.raises(SettingsError, match="admin key"):
        create_app(echo_settings(tmp_path, host="0.0.0.0"))
    create_app(echo_settings(tmp_path, host="0.0.0.0", auth={"admin_key": "k"}))  # a key makes it safe


@pytest.mark.parametrize(("peer", "headers", "allowed"), [
    ("127.0.0.1", {}, True),
    ("::1", {}, True),
    ("203.0.113.7", {}, False),                                      # a server started with uvicorn --host 0.0.0.0
    ("127.0.0.1", {"x-forwarded-for": "203.0.113.7, 127.0.0.1"}, False),  # a reverse proxy on this machine
    ("127.0.0.1", {"forwarded": 'for="[2001:db8::17]:4711";proto=https'}, False),
    ("127.0.0.1", {"x-forwarded-for": "127.0.0.1"}, False),  # a proxy not in auth.trusted_proxies (issue 25, 3)
    ("127.0.0.1", {"x-forwarded-for": "unknown"}, False),
    ("testclient", {"x-real-ip": "127.0.0.1"}, False),  # a peer that is not an IP cannot be a trusted proxy
])
def test_without_an_admin_key_only_local_callers_reach_the_admin_api(
        tmp_path: Any, peer: str, headers: dict[str, str], allowed: bool) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app
    from tests.conftest import echo_settings

    with TestClient(create_app(echo_settings(tmp_path)), client=(peer, 40000)) as client:
        response = client.get("/admin/thresholds", headers=headers)
        chat = client.post("/v1/chat/completions", headers=headers, json={
            "model": "frugal-small", "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 200  # the OpenAI API itself is not restricted
    if allowed:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["type"] == "permission_error" and "admin_key" in error["message"]


def test_serve_refuses_a_public_bind_without_an_admin_key(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from router.cli import app

    monkeypatch.delenv("FRUGAL_ADMIN_KEY", raising=False)
    monkeypatch.delenv("FRUGAL_AUTH__ADMIN_KEY", raising=False)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "admin key" in result.output


def test_frugal_admin_key_env_is_an_alias_and_the_nested_name_wins(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import echo_settings

    monkeypatch.setenv("FRUGAL_ADMIN_KEY", "from-alias")
    with app_client(echo_settings(tmp_path)) as client:
        assert client.get("/admin/thresholds").status_code == 401
        assert client.get("/admin/thresholds", headers={"authorization": "Bearer from-alias"}).status_code == 200
    monkeypatch.setenv("FRUGAL_AUTH__ADMIN_KEY", "from-nested")
    settings = echo_settings(tmp_path)
    assert settings.auth.admin_key is not None and settings.auth.admin_key.get_secret_value() == "from-nested"


def test_keys_commands_make_digests_the_config_accepts(tmp_path: Any) -> None:
    import json

    from router.cli import app
    from tests.conftest import echo_settings

    runner = CliRunner()
    hashed = runner.invoke(app, ["keys", "hash", "sk-client-1"])
    assert hashed.exit_code == 0 and hashed.stdout.strip() == hash_key("sk-client-1")
    piped = runner.invoke(app, ["keys", "hash"], input="sk-client-1\n")
    assert piped.stdout.strip() == hash_key("sk-client-1")
    made = json.loads(runner.invoke(app, ["keys", "new"]).stdout)
    assert made["sha256"] == hash_key(made["key"]) and len(made["key"]) > 40
    chat = {"model": "frugal-auto", "messages": [{"role": "user", "content": "hi"}]}
    with app_client(echo_settings(tmp_path, auth={"client_key_hashes": [made["sha256"]]})) as client:
        assert client.post("/v1/chat/completions", json=chat).status_code == 401
        ok = client.post("/v1/chat/completions", json=chat, headers={"authorization": f"Bearer {made['key']}"})
        assert ok.status_code == 200


def test_malformed_keys_stop_start_up() -> None:
    from router.auth import KeyChecker
    from router.settings import AuthConfig

    with pytest.raises(SettingsError, match="frugal keys hash"):
        KeyChecker(AuthConfig(client_key_hashes=["sk-plain-text-key"]))
    with pytest.raises(SettingsError, match="printable ASCII"):
        KeyChecker(AuthConfig(admin_key="cl\u00e9"))


def test_named_client_keys_are_recorded_by_name_and_reported_per_client(tmp_path: Path) -> None:
    from tests.admin.conftest import wait_for
    from tests.conftest import echo_settings

    auth = {"client_keys": {"team-a": hash_key("sk-team-a")}, "client_key_hashes": [hash_key("sk-unnamed")]}
    chat = {"model": "frugal-small", "messages": [{"role": "user", "content": "Rewrite politely: send it now."}]}
    with app_client(echo_settings(tmp_path, auth=auth)) as client:
        for key in ("sk-team-a", "sk-team-a", "sk-unnamed"):
            answered = client.post("/v1/chat/completions", json=chat, headers={"authorization": f"Bearer {key}"})
            assert answered.status_code == 200, answered.text
        assert client.post("/v1/chat/completions", json=chat,
                           headers={"authorization": "Bearer sk-nobody"}).status_code == 401
        wait_for(lambda: client.get("/admin/report.json").json()["requests"] == 3, timeout=10)
        recorded = {r["client_key_id"] for r in client.get("/admin/requests").json()["requests"]}
        assert recorded == {"team-a", hash_key("sk-unnamed")[:12]}
        team = client.get("/admin/report.json", params={"client": "team-a"}).json()
        assert team["requests"] == 2 and team["period"]["client"] == "team-a"
        assert client.get("/admin/report.json", params={"client": hash_key("sk-unnamed")[:12]}).json()["requests"] == 1
        assert "client team-a" in client.get("/admin/report.html", params={"client": "team-a"}).text
        assert "team-a" in client.get("/admin/report.csv", params={"client": "team-a"}).text
        assert client.get("/admin/report.json", params={"client": "x" * 129}).status_code == 422

        everyone, team_page = client.get("/admin").text, client.get("/admin", params={"client": "team-a"}).text
        ledger = client.app.state.services.ledger
        since = window_start(48)
        team_series = client_series(ledger, since, True, "team-a")
        all_series = chart_series(ledger, since, True)

    def requests_card(page: str) -> str:
        return re.search(r'data-card="Requests">.*?<div class="big">(\d+)</div>', page).group(1)

    assert requests_card(everyone) == "3" and requests_card(team_page) == "2"
    assert "client <b>team-a</b>" in team_page and "/admin/report.html?client=team-a" in team_page
    assert 'href="/admin?hours=48&amp;client=team-a"' in everyone  # the configured names are offered
    assert team_page.count("<td>frugal-small</td>") == 2 and everyone.count("<td>frugal-small</td>") == 3
    assert sum(n for b in team_series["buckets"] for n in team_series["requests"][b].values()) == 2
    assert sum(n for b in all_series["buckets"] for n in all_series["requests"][b].values()) == 3
    assert team_series["buckets"] == all_series["buckets"]


def test_client_key_names_are_checked_at_start_up() -> None:
    from router.auth import KeyChecker
    from router.settings import AuthConfig

    with pytest.raises(SettingsError, match="names must be"):
        KeyChecker(AuthConfig(client_keys={"team a/b": hash_key("k")}))
    with pytest.raises(SettingsError, match="two names"):
        KeyChecker(AuthConfig(client_keys={"a": hash_key("k"), "b": hash_key("k")}))
    with pytest.raises(SettingsError, match="frugal keys hash"):
        KeyChecker(AuthConfig(client_keys={"team": "not-a-digest"}))
