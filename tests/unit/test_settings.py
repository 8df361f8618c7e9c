"""Settings precedence: arguments, then PARALLELS_* variables, then the config file, then defaults."""

from __future__ import annotations

from parallels.settings import Settings, config_file


def test_config_file_is_below_env_and_arguments(tmp_path, monkeypatch):
    cfg = tmp_path / "config.toml"
    cfg.write_text('api_url = "http://from-file:1"\napi_token = "file-token"\nlocal_slots = 3\n')
    monkeypatch.setenv("PARALLELS_CONFIG", str(cfg))
    monkeypatch.delenv("PARALLELS_API_URL", raising=False)
    monkeypatch.setenv("PARALLELS_API_TOKEN", "env-token")
    s = Settings()
    assert (s.api_url, s.api_token, s.local_slots) == ("http://from-file:1", "env-token", 3)
    assert Settings(local_slots=7).local_slots == 7


def test_config_file_location(tmp_path, monkeypatch):
    monkeypatch.delenv("PARALLELS_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_file() == tmp_path / "parallels" / "config.toml"
    assert Settings().api_url == "http://127.0.0.1:8000"  # no file: defaults
