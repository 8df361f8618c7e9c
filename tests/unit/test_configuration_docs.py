"""docs/configuration.md lists every setting with its environment variable (docs match code)."""

from pathlib import Path

from parallels.settings import Settings

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()


def test_every_setting_is_documented_with_its_env_var():
    missing = [
        name
        for name in Settings.model_fields
        if f"`{name}`" not in DOC or f"`PARALLELS_{name.upper()}`" not in DOC
    ]
    assert not missing, f"add to docs/configuration.md: {missing}"
