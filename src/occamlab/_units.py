"""Information units: nats (natural log, what torch's cross-entropy returns) and bits (log base 2,
what computational mechanics reports). One nat is ``1 / ln 2 = 1.4427`` bits.

>>> round(nats_to_bits(math.log(2)), 12)
1.0
>>> round(bits_to_nats(1.0), 6)
0.693147
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np

__all__ = ["LN2", "BITS_PER_NAT", "nats_to_bits", "bits_to_nats", "convert", "UNITS"]

LN2 = math.log(2.0)
BITS_PER_NAT = 1.0 / LN2
UNITS = ("nats", "bits")

T = TypeVar("T", float, np.ndarray)


def nats_to_bits(x: T) -> T:
    """An information quantity in nats, in bits (divides by ``ln 2``)."""
    return x / LN2


def bits_to_nats(x: T) -> T:
    """An information quantity in bits, in nats (multiplies by ``ln 2``)."""
    return x * LN2


def convert(x: T, *, src: str, dst: str) -> T:
    """``x`` from unit ``src`` to unit ``dst`` (each ``"nats"`` or ``"bits"``)."""
    from occamlab.errors import ConfigError

    for u in (src, dst):
        if u not in UNITS:
            raise ConfigError(f"unknown information unit {u!r}; allowed: {', '.join(UNITS)}")
    if src == dst:
        return x
    return nats_to_bits(x) if src == "nats" else bits_to_nats(x)
