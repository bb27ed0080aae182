"""The embedded provider's settings: its default threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from convostack.providers.cpu_threads import default_threads, physical_cores
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
