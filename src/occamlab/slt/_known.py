"""Learning coefficients known in closed form, computed with exact fractions.

Each function returns a :class:`LearningCoefficient`: the learning coefficient (real log canonical
threshold) ``lambda`` as a :class:`fractions.Fraction` and its multiplicity ``m`` (the order of the
pole), so that the free energy is ``F_n = n L_n(w0) + lambda log n - (m - 1) log log n + O_p(1)``.

Families
--------
regular
    ``lambda = d/2``, ``m = 1`` (Watanabe 2009, Ch. 1).
normal crossing
    ``K(w) = prod_i w_i^(2 k_i)`` with prior density ``prod_i |w_i|^(h_i)``:
    ``lambda = min_i (h_i + 1)/(2 k_i)``, ``m = #{i : (h_i + 1)/(2 k_i) = lambda}``.
reduced-rank regression
    ``y = B A x`` with input ``M``, inner ``H``, output ``N``, true rank ``r`` (Aoyagi & Watanabe 2005,
    Neural Networks 18(7), Main Theorem).
deep linear network
    ``y = W_L ... W_1 x`` with widths ``H_1`` (input), ..., ``H_{L+1}`` (output) and true rank ``r``
    (Aoyagi 2024, Neural Networks 173, 106132, Theorem 1): with ``M_s = H_s - r`` there is a unique
    set ``Sigma`` of ``l + 1 >= 2`` indices with ``max_{Sigma} M < min_{not Sigma} M``,
    ``sum_{Sigma} M >= l max_{Sigma} M`` and ``sum_{Sigma} M < l min_{not Sigma} M``. With
    ``S = sum_{Sigma} M``, ``a = S - l (ceil(S / l) - 1)`` (so ``1 <= a <= l``)::

        lambda = (-r^2 + r (H_1 + H_{L+1}))/2 + a (l - a)/(4 l) - l (l - 1)/4 (S / l)^2
                 + 1/2 sum_{i < j in Sigma} M_i M_j,

    ``m = 1`` if ``a = l`` else ``2``. For two layers this reduces to reduced-rank regression
    (tested for every shape up to width 7).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError

__all__ = [
    "LearningCoefficient",
    "regular_lambda",
    "normal_crossing_lambda",
    "rrr_lambda",
    "dln_lambda",
]


@dataclass(frozen=True)
class LearningCoefficient(Rendered):
    """An exact learning coefficient.

    Attributes
    ----------
    family : str
        ``"regular"``, ``"normal_crossing"``, ``"rrr"`` or ``"dln"``.
    lambda_ : Fraction
        The learning coefficient (RLCT), exact.
    multiplicity : int
        Its order ``m`` (1 means no ``log log n`` term).
    params : dict
        The shape that produced it (for example ``{"M": 4, "H": 3, "N": 4, "r": 1}``).
    n_params : int
        Dimension ``d`` of the parameter space.
    case : str
        Which branch of the theorem applied.
    """

    family: str
    lambda_: Fraction
    multiplicity: int
    params: dict[str, Any] = field(default_factory=dict)
    n_params: int = 0
    case: str = ""

    @property
    def value(self) -> float:
        """``lambda`` as a float."""
        return float(self.lambda_)

    def _tables(self) -> list[Table]:
        rows: list[list[Any]] = [
            ["family", self.family],
            ["lambda", f"{self.lambda_} ({float(self.lambda_):.6g})"],
            ["multiplicity m", self.multiplicity],
            ["parameters d", self.n_params],
            ["shape", ", ".join(f"{k}={v}" for k, v in self.params.items())],
            ["case", self.case],
        ]
        return [Table("Learning coefficient", ["quantity", "value"], rows)]


def _check_int(name: str, v: Any, *, low: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {v!r}")
    return int(v)


def regular_lambda(d: int) -> LearningCoefficient:
    """Regular model with ``d`` parameters: ``lambda = d/2``, ``m = 1``."""
    d = _check_int("d", d, low=1)
    return LearningCoefficient("regular", Fraction(d, 2), 1, {"d": d}, d, "regular")


def normal_crossing_lambda(
    k: Sequence[int], h: Sequence[int] | None = None
) -> LearningCoefficient:
    """Normal crossing ``K(w) = prod w_i^(2 k_i)``, prior ``prod |w_i|^(h_i)``.

    ``lambda = min_i (h_i + 1)/(2 k_i)``; ``m`` counts the indices reaching the minimum.

    >>> str(normal_crossing_lambda([1, 2]).lambda_)
    '1/4'
    >>> normal_crossing_lambda([1, 1]).multiplicity
    2
    """
    ks = [_check_int(f"k[{i}]", v, low=1) for i, v in enumerate(k)]
    if not ks:
        raise ConfigError("normal_crossing_lambda needs at least one exponent k_i >= 1")
    hs = [0] * len(ks) if h is None else [_check_int(f"h[{i}]", v) for i, v in enumerate(h)]
    if len(hs) != len(ks):
        raise ConfigError(f"h has {len(hs)} entries but k has {len(ks)}; they must match")
    ratios = [Fraction(hi + 1, 2 * ki) for ki, hi in zip(ks, hs, strict=True)]
    lam = min(ratios)
    m = sum(1 for q in ratios if q == lam)
    return LearningCoefficient(
        "normal_crossing", lam, m, {"k": list(ks), "h": list(hs)}, len(ks), "normal crossing"
    )


def rrr_lambda(M: int, H: int, N: int, r: int) -> LearningCoefficient:
    """Reduced-rank regression ``y = B A x`` (Aoyagi & Watanabe 2005).

    ``A`` is ``H x M``, ``B`` is ``N x H``, the true product has rank ``r <= min(M, H, N)``.

    >>> rrr_lambda(4, 3, 4, 1).lambda_, rrr_lambda(5, 3, 5, 3).lambda_
    (Fraction(6, 1), Fraction(21, 2))
    """
    M, H, N = (_check_int(s, v, low=1) for s, v in (("M", M), ("H", H), ("N", N)))
    r = _check_int("r", r)
    if r > min(M, H, N):
        raise ConfigError(f"true rank r={r} exceeds min(M, H, N)={min(M, H, N)}")
    d = H * (M + N)
    shape = {"M": M, "H": H, "N": N, "r": r}
    if M + H < N + r:
        return LearningCoefficient(
            "rrr", Fraction(H * M - H * r + N * r, 2), 1, shape, d, "M+H < N+r"
        )
    if N + H < M + r:
        return LearningCoefficient(
            "rrr", Fraction(H * N - H * r + M * r, 2), 1, shape, d, "N+H < M+r"
        )
    if M + N < H + r:
        return LearningCoefficient("rrr", Fraction(M * N, 2), 1, shape, d, "M+N < H+r")
    S = 2 * (H + r) * (M + N) - (M - N) ** 2 - (H + r) ** 2
    if (M + H + N + r) % 2 == 0:
        return LearningCoefficient("rrr", Fraction(S, 8), 1, shape, d, "general, even")
    return LearningCoefficient("rrr", Fraction(S + 1, 8), 2, shape, d, "general, odd")


def _dln_sigma(deficits: Sequence[int]) -> list[int]:
    """Indices ``Sigma`` of Aoyagi (2024), Definition 3 (unique; checked)."""
    order = sorted(range(len(deficits)), key=lambda i: deficits[i])
    found = []
    for size in range(2, len(deficits) + 1):
        inside = order[:size]
        ell = size - 1
        mx = max(deficits[i] for i in inside)
        total = sum(deficits[i] for i in inside)
        outside = order[size:]
        mn = min((deficits[i] for i in outside), default=None)
        if mn is not None and not mx < mn:
            continue
        if total < ell * mx:
            continue
        if mn is not None and not total < ell * mn:
            continue
        found.append(sorted(inside))
    # Sigma is unique (Aoyagi 2024); a second solution would mean a bug in this search.
    assert len(found) == 1, f"expected one Sigma for deficits {deficits}, found {found}"
    return found[0]


def dln_lambda(widths: Sequence[int], r: int) -> LearningCoefficient:
    """Deep linear network ``y = W_L ... W_1 x`` (Aoyagi 2024, Theorem 1).

    Parameters
    ----------
    widths : sequence of int
        ``(H_1, ..., H_{L+1})``: input width, hidden widths, output width (``L >= 1`` layers).
    r : int
        Rank of the true product matrix, ``r <= min(widths)``.

    >>> dln_lambda([4, 3, 4], 1).lambda_  # two layers = reduced-rank regression (4, 3, 4, 1)
    Fraction(6, 1)
    """
    hs = [_check_int(f"widths[{i}]", v, low=1) for i, v in enumerate(widths)]
    if len(hs) < 2:
        raise ConfigError(f"widths needs an input and an output width, got {list(widths)}")
    r = _check_int("r", r)
    if r > min(hs):
        raise ConfigError(f"true rank r={r} exceeds the narrowest width {min(hs)}")
    d = sum(a * b for a, b in itertools.pairwise(hs))
    shape = {"widths": list(hs), "r": r}  # JSON types: the result round-trips equal
    if len(hs) == 2:  # one layer: a regular linear model
        return LearningCoefficient("dln", Fraction(d, 2), 1, shape, d, "one layer (regular)")
    deficits = [h - r for h in hs]
    sigma = _dln_sigma(deficits)
    ell = len(sigma) - 1
    S = sum(deficits[i] for i in sigma)
    a = S - ell * (-(-S // ell) - 1)
    pairs = sum(deficits[i] * deficits[j] for i, j in itertools.combinations(sigma, 2))
    lam = (
        Fraction(-r * r + r * (hs[0] + hs[-1]), 2)
        + Fraction(a * (ell - a), 4 * ell)
        - Fraction(ell * (ell - 1), 4) * Fraction(S, ell) ** 2
        + Fraction(pairs, 2)
    )
    m = 1 if a == ell else 2
    return LearningCoefficient("dln", lam, m, shape, d, f"|Sigma|={ell + 1}, a={a}")
