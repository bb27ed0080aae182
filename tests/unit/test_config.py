"""Configuration: defaults < config file < environment < command line; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from convostack.config import load_config
from convostack.config_sources import ConfigError
from convostack.stack import provider_settings


def test_defaults(tmp_path: Path) -> None:
    config = load_config(environ={"CONVOSTACK_HOME": str(tmp_path)})
    assert (config.host, config.port) == ("127.0.0.1", 8321)
    assert config.database_url == f"sqlite:///{tmp_path / 'convostack.db'}"
    assert config.base_url == "http://127.0.0.1:8321/v1"


def test_precedence(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("port: 9001\nhost: 0.0.0.0\nlog_level: debug\n")
    config = load_config(
        file,
        overrides={"port": 9003},
        environ={"CONVOSTACK_PORT": "9002", "CONVOSTACK_HOST": "::1"},
    )
    assert config.port == 9003  # command line
    assert config.host == "::1"  # environment over file
    assert config.log_level == "debug"  # file over default
    assert config.base_url == "http://[::1]:9003/v1"


def test_config_file_from_environment(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("db: sqlite:///x.db\n")
    assert load_config(environ={"CONVOSTACK_CONFIG": str(file)}).db == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("port: 99999\n", {}, "port = 99999 (from config file"),
        ("", {"CONVOSTACK_PORT": "eighty"}, "port = 'eighty' (from environment)"),
        ("colour: blue\n", {}, "unknown setting 'colour'"),
        ("- a\n- b\n", {}, "must hold a mapping"),
        ("port: [\n", {}, "not valid YAML"),
    ],
)
def test_errors_say_what_and_where(
    tmp_path: Path, text: str, env: dict[str, str], expected: str
) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(file, environ=env)
    assert expected in str(caught.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot read config file"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_providers_default_to_embedded_and_upstream_replaces_it() -> None:
    default = provider_settings(load_config(environ={}))
    assert [s.type for s in default] == ["embedded", "embedded_embeddings"]
    config = load_config(overrides={"upstream": "http://127.0.0.1:9/v1"}, environ={})
    assert [(s.type, s.id) for s in provider_settings(config)] == [("openai_compat", "upstream")]


def test_bad_provider_entries_fail_fast() -> None:
    config = load_config(overrides={"providers": [{"type": "quantum"}]}, environ={})
    with pytest.raises(
        ConfigError, match="known types: embedded, embedded_embeddings, openai_compat"
    ):
        provider_settings(config)
    config = load_config(
        overrides={"providers": [{"type": "openai_compat", "timeout": -1}]}, environ={}
    )
    with pytest.raises(ConfigError, match=r"providers\[0\]\.base_url"):
        provider_settings(config)


def test_model_aliases_from_the_file_and_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("model_aliases: {gpt-4.1: smollm2-135m-instruct}\ndefault_model: gpt-4.1\n")
    config = load_config(file, environ={})
    assert config.model_aliases == {"gpt-4.1": "smollm2-135m-instruct"}
    assert config.default_model == "gpt-4.1"
    env = {"CONVOSTACK_MODEL_ALIASES": "gpt-4o = a, gpt-4o-mini=b/c"}
    assert load_config(environ=env).model_aliases == {"gpt-4o": "a", "gpt-4o-mini": "b/c"}
    with pytest.raises(ConfigError, match=r"model_aliases.*alias=target pairs"):
        load_config(environ={"CONVOSTACK_MODEL_ALIASES": "gpt-4o"})


def test_the_sample_config_loads_as_the_defaults(tmp_path: Path) -> None:
    from convostack.cli import sample_config

    file = tmp_path / "sample.yaml"
    file.write_text(sample_config())
    environ = {"CONVOSTACK_HOME": str(tmp_path)}
    assert load_config(file, environ=environ) == load_config(environ=environ)
