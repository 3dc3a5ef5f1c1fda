"""The example deployment files parse, name the documented services, and the replica config is valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_compose_names_the_documented_services_and_mounts_the_index_read_only() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "index", "frugal-1", "frugal-2", "lb"} <= set(services)
    replicas = [name for name in services if name.startswith("frugal-")]
    data_volumes = set()
    for name in replicas:
        volumes = services[name]["volumes"]
        assert "index:/index:ro" in volumes
        data = [v for v in volumes if v.endswith(":/var/lib/frugal")]
        assert len(data) == 1
        data_volumes.add(data[0])
        env = services[name]["environment"]
        assert env["FRUGAL_LEDGER_URL"].startswith("postgresql+psycopg://") and "@postgres:5432/" in env["FRUGAL_LEDGER_URL"]
        assert "FRUGAL_AUTH__ADMIN_KEY" in env  # replicas bind 0.0.0.0: the admin key is required
    assert len(data_volumes) == len(replicas)  # each replica its own spool
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert all(f"server {name}:8000" in nginx for name in replicas)


def test_the_replica_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    from router.settings import load_settings

    monkeypatch.setenv("FRUGAL_AUTH__ADMIN_KEY", "deploy-test-key-0123")
    monkeypatch.setenv("FRUGAL_LEDGER_URL", "postgresql+psycopg://frugal:x@postgres:5432/frugal")
    settings = load_settings(DEPLOY / "frugal.yaml", host="0.0.0.0")
    settings.check_safe_bind()
    assert settings.index_dir() == Path("/index") and not settings.demo_index and settings.ledger_spool
    assert settings.resolved_ledger_url().startswith("postgresql+psycopg://")


def test_the_systemd_unit_gives_each_instance_its_own_data_dir() -> None:
    unit = (DEPLOY / "systemd" / "frugal@.service").read_text()
    assert "FRUGAL_DATA_DIR=/var/lib/frugal/%i" in unit and "--port %i" in unit
    assert "EnvironmentFile=/etc/frugal/frugal.env" in unit
