"""Choosing where a sweep's runs execute: the factory of backends (a process pool, this process, or
Ray), after the one check of ``jobs``/``backend``/``address`` (:func:`check_backend`)."""

from __future__ import annotations

from ._execute import BACKENDS, Backend, InlineBackend, LocalBackend, check_backend

__all__ = ["BACKENDS", "check_backend", "make_backend"]

def make_backend(jobs: int, kind: str = "local", *, address: str | None = None) -> Backend:
    """``kind="local"``: ``jobs >= 1`` a process pool of that size, ``0`` this process (no pool).
    ``kind="ray"``: a :class:`~occamlab.experiments.RayBackend` (Ray imported only then)."""
    check_backend(jobs, kind, address)
    if kind == "ray":
        from ._ray import RayBackend

        return RayBackend(jobs, address=address)
    return InlineBackend() if jobs == 0 else LocalBackend(jobs)
