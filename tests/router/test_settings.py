"""Settings precedence (args > env > YAML > defaults), validation messages and unsafe combinations."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.settings import SettingsError, load_settings


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_precedence_args_over_env_over_yaml_over_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path / "f.yaml", "port: 9001\nmax_escalations: 1\nlarge:\n  backend: litellm\n  model: a/b\n")
    assert load_settings(config).port == 9001
    monkeypatch.setenv("FRUGAL_PORT", "9002")
    monkeypatch.setenv("FRUGAL_LARGE__MODEL", "openai/gpt-4o-mini")
    settings = load_settings(config)
    assert settings.port == 9002
    assert settings.large.model == "openai/gpt-4o-mini"
    assert settings.max_escalations == 1
    assert load_settings(config, port=9003).port == 9003
    monkeypatch.delenv("FRUGAL_PORT")
    assert load_settings(None, data_dir=tmp_path).on_large_unavailable == "degrade"


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRUGAL_CONFIG", str(write(tmp_path / "g.yaml", "port: 7007\n")))
    assert load_settings().port == 7007


@pytest.mark.parametrize(("yaml_text", "needle"), [
    ("port: banana\n", "port"),
    ("max_escalations: 5\n", "max_escalations"),
    ("on_large_unavailable: maybe\n", "on_large_unavailable"),
    ("no_such_key: 1\n", "no_such_key"),
    ("aliases:\n  cheap: frugal-tiny\n", "frugal-auto"),
    ("small:\n  backend: llamacpp\n  timeout_s: -1\n", "small.timeout_s"),
])
def test_invalid_configuration_names_the_setting(tmp_path: Path, yaml_text: str, needle: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(write(tmp_path / "bad.yaml", yaml_text))
    assert needle in str(error.value)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "absent.yaml")


def test_public_bind_without_admin_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="admin key"):
        load_settings(None, data_dir=tmp_path, host="0.0.0.0").check_safe_bind()
    load_settings(None, data_dir=tmp_path, host="127.0.0.1").check_safe_bind()
    load_settings(None, data_dir=tmp_path, host="0.0.0.0", auth={"admin_key": "k"}).check_safe_bind()


def test_unknown_backend_option_fails_start_up(tmp_path: Path) -> None:
    from router.services import build_backends

    settings = load_settings(None, data_dir=tmp_path, small={"backend": "echo", "options": {"colour": "red"}})
    with pytest.raises(SettingsError, match="colour"):
        build_backends(settings, {})
    settings = load_settings(None, data_dir=tmp_path, small={"backend": "nonesuch"})
    with pytest.raises(SettingsError, match="registered backends"):
        build_backends(settings, {})
