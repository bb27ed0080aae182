"""The embedded provider's settings: its default threads, its prompt cache, and both in
the sample config file."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from convostack.cli import sample_config
from convostack.providers import embedded
from convostack.providers.cpu_threads import default_threads, physical_cores
from convostack.providers.embedded import EmbeddedProvider, _prepare
from convostack.providers.registry import parse_settings
from convostack.providers.settings import EmbeddedSettings


def topology(root: Path, cores: list[tuple[int, int]]) -> Path:
    """A /sys/devices/system/cpu with CPU n on (package, core) `cores[n]`."""
    for cpu, (package, core) in enumerate(cores):
        folder = root / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        (folder / "physical_package_id").write_text(f"{package}\n")
        (folder / "core_id").write_text(f"{core}\n")
    return root


@pytest.mark.parametrize(
    ("cores", "allowed", "threads"),
    [
        ([(0, 0)], {0}, 1),
        ([(0, 0), (0, 1)], {0, 1}, 1),  # 2 cores: one left to the server
        ([(0, 0), (0, 1), (0, 0), (0, 1)], {0, 1, 2, 3}, 2),  # 2 cores, 2 threads each
        ([(0, n) for n in range(4)], {0, 1, 2, 3}, 3),
        ([(0, n) for n in range(8)], {2, 3}, 1),  # an affinity of 2 CPUs out of 8
        ([(p, n) for p in range(2) for n in range(12)], set(range(24)), 8),
    ],
)
def test_default_threads_one_per_physical_core_leaving_one_cpu(
    tmp_path: Path, cores: list[tuple[int, int]], allowed: set[int], threads: int
) -> None:
    assert default_threads(allowed, topology(tmp_path, cores)) == threads


def test_without_a_readable_topology_every_cpu_counts_as_a_core(tmp_path: Path) -> None:
    assert physical_cores({0, 1, 2, 3}, tmp_path) == 4
    assert default_threads({0, 1, 2, 3}, tmp_path) == 3


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here")
def test_the_default_leaves_a_cpu_of_this_process_free() -> None:
    allowed = len(os.sched_getaffinity(0))
    threads = EmbeddedSettings().n_threads
    assert 1 <= threads <= max(1, allowed - 1)
    assert EmbeddedSettings(n_threads=allowed).n_threads == allowed  # still configurable


REQUEST = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("setting", "request_value", "sent"),
    [(None, None, True), (False, None, False), (False, True, True), (True, False, False)],
)
def test_cache_prompt_is_on_unless_the_settings_or_the_request_turn_it_off(
    setting: bool | None, request_value: bool | None, sent: bool
) -> None:
    settings = EmbeddedSettings() if setting is None else EmbeddedSettings(cache_prompt=setting)
    request: dict[str, Any] = dict(REQUEST)
    if request_value is not None:
        request["cache_prompt"] = request_value
    prepared, _ = _prepare(request, settings)
    assert prepared["cache_prompt"] is sent


class RecordingRuntime:
    """Stands in for xllamacpp: keeps the parameters the runtime's server is built with."""

    def __init__(self) -> None:
        self.params: Any = None

    def CommonParams(self) -> Any:
        return SimpleNamespace(
            model=SimpleNamespace(), cpuparams=SimpleNamespace(), cpuparams_batch=SimpleNamespace()
        )

    def Server(self, params: Any) -> object:
        self.params = params
        return object()


@pytest.mark.parametrize(
    ("settings", "cached", "memory_mib"),
    [
        ({}, True, 512),
        ({"prompt_cache_mib": 64}, True, 64),
        ({"cache_prompt": False, "prompt_cache_mib": 64}, False, 0),
    ],
)
def test_the_runtime_keeps_prompts_within_the_budget_unless_the_cache_is_off(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    settings: dict[str, Any],
    cached: bool,
    memory_mib: int,
) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    runtime = RecordingRuntime()
    monkeypatch.setattr(embedded, "_runtime", lambda: runtime)
    provider = EmbeddedProvider(EmbeddedSettings(model_path=model, **settings))
    provider._load()
    assert runtime.params.cache_prompt is cached
    assert runtime.params.cache_ram_mib == memory_mib
    # Prompts are matched against the cache, never resumed from a merely similar slot.
    assert runtime.params.slot_prompt_similarity == 0.0
    assert runtime.params.n_parallel == 1


def test_the_sample_config_shows_every_provider_setting_as_valid_yaml() -> None:
    sample = sample_config()
    commented = sample[sample.index("# providers:") :].splitlines()
    providers = yaml.safe_load("\n".join(line.removeprefix("# ") for line in commented))
    by_type = {raw["type"]: raw for raw in providers["providers"]}
    assert by_type["embedded"]["cache_prompt"] is True
    assert by_type["embedded"]["n_threads"] == EmbeddedSettings().n_threads
    assert by_type["openai_compat"]["base_url"] == "<required>"
    by_type["openai_compat"]["base_url"] = "http://127.0.0.1:8000/v1"
    for n, raw in enumerate(providers["providers"]):
        assert parse_settings(raw, f"providers[{n}]").model_dump() == raw
    assert "# None" not in sample  # every setting described
