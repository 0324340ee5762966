"""Provenance of a run: where, with what code and which threads it ran (``env.json``)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from occamlab._threads import THREAD_VARS

__all__ = ["provenance", "git_commit"]

PACKAGES = ("occamlab", "numpy", "scipy", "pandas", "torch", "safetensors", "pyarrow")


@lru_cache(maxsize=1)
def git_commit() -> dict[str, Any] | None:
    """The git commit of the occamlab source tree (and whether it had local changes), if any."""
    src = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True,
                              text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src,
                               capture_output=True, text=True, timeout=5)
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


@lru_cache(maxsize=1)
def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance(config: dict[str, Any]) -> dict[str, Any]:
    """Provenance of the current process for a run of ``config``.

    Records the git commit, package versions (from installed metadata, nothing imported), torch's
    thread count when torch is already loaded, thread environment variables, the config's
    ``seed`` if it has one, host, Python and platform.
    """
    torch = sys.modules.get("torch")
    threads = None
    if torch is not None and hasattr(torch, "get_num_threads"):
        threads = int(torch.get_num_threads())
    return {
        "git": git_commit(),
        "versions": _versions(),
        "torch_threads": threads,
        "thread_env": {k: os.environ.get(k) for k in THREAD_VARS},
        "seed": config.get("seed"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
