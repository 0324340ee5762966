"""The environment variables that set how many threads the math libraries start, in one list.

A sweep worker runs one thread per math library (ARCHITECTURE.md, performance habits): the
variables must be set before numpy or torch is imported in that process. Provenance records them.
"""

from __future__ import annotations

__all__ = ["THREAD_VARS", "single_thread_env"]

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def single_thread_env() -> dict[str, str]:
    """``{VAR: "1"}`` for every variable of :data:`THREAD_VARS`."""
    return {k: "1" for k in THREAD_VARS}
