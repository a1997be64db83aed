"""What this process may use: the CPUs and memory its container is given, not the host's.

A pod limited to 2 CPUs on a 64-core node sees 64 cores in os.cpu_count(); its real share is
the cgroup's CPU quota (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`) and
the CPUs it may run on (os.sched_getaffinity). Memory likewise comes from `memory.max`
(v1 `memory.limit_in_bytes`). identity sizes its argon2 concurrency from these.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpu_quota(root: Path = CGROUP) -> float | None:
    """The cgroup's CPU limit in CPUs (None: no limit)."""
    v2 = _read(root / "cpu.max")
    if v2:
        quota, _, period = v2.partition(" ")
        if quota != "max" and period:
            return int(quota) / int(period)
        return None
    quota, period = _read(root / "cpu" / "cpu.cfs_quota_us"), _read(root / "cpu" / "cpu.cfs_period_us")
    if quota and period and int(quota) > 0:
        return int(quota) / int(period)
    return None


def memory_limit(root: Path = CGROUP) -> int | None:
    """The cgroup's memory limit in bytes (None: no limit)."""
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        raw = _read(path)
        if raw and raw != "max" and int(raw) < 1 << 60:  # v1 says "no limit" with a huge number
            return int(raw)
    return None


def cpus(root: Path = CGROUP) -> int:
    """How many CPUs this process can keep busy: the affinity set, lowered to the quota (at least 1)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota(root)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def hashing_slots(memory_kib: int, *, root: Path = CGROUP, memory_share: float = 0.5) -> int:
    """How many argon2 hashes may run at once: one per CPU, and no more than fit in half the
    memory limit (each needs `memory_kib`), at least 1."""
    slots = cpus(root)
    limit = memory_limit(root)
    if limit is not None:
        slots = min(slots, int(limit * memory_share // (memory_kib * 1024)))
    return max(1, slots)
