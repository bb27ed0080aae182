"""The embedded model's default number of generation threads, from the CPUs this process
may really use.

llama.cpp's threads wait for each other at every step of every token, spinning: when one
of them is descheduled (the event loop answering a request, SQLite committing, another
process on the host), the others wait for it. So the default is one thread per physical
core this process may run on (hyper-threads add little to a memory-bound model), leaving
one CPU to the rest of the server and of the host, and at most 8 (more gain nothing on
a model this size). Measured on a 2-core machine at load 3.7 (bench/embedded.py,
SmolLM2-135M): 2 threads gave 27 to 68 tokens/s with 0.12 to 1.2 s to the first token
and a 1 to 2 s load; 1 thread a steady 43 to 52 tokens/s, 0.2 s and 0.6 s. On a
dedicated machine `n_threads` set to every core is faster (99 tokens/s with 2 on that
machine when it was quieter): the setting stays.

Not seen here: a CPU quota (a container's `--cpus`, a Kubernetes limit) that is not an
affinity mask; set `n_threads` there.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

SYS_CPU = Path("/sys/devices/system/cpu")
MAX_DEFAULT_THREADS = 8


def allowed_cpus() -> set[int]:
    """The CPUs this process may run on (its affinity: taskset, a cpuset), else all."""
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))


def physical_cores(cpus: Collection[int], sys_cpu: Path = SYS_CPU) -> int:
    """The physical cores among `cpus` (hyper-threads of one core count once), from the
    kernel's topology; when that cannot be read, every CPU counts as a core."""
    cores: set[tuple[str, str]] = set()
    for cpu in cpus:
        topology = sys_cpu / f"cpu{cpu}" / "topology"
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            return len(cpus)
        cores.add((package, core))
    return len(cores)


def default_threads(cpus: Collection[int] | None = None, sys_cpu: Path = SYS_CPU) -> int:
    """One thread per physical core of `cpus` (default: this process's), keeping one CPU
    free for the rest, between 1 and MAX_DEFAULT_THREADS."""
    usable = allowed_cpus() if cpus is None else cpus
    threads = min(physical_cores(usable, sys_cpu), len(usable) - 1, MAX_DEFAULT_THREADS)
    return max(1, threads)
