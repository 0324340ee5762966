"""The ``volume-law`` experiment: ``V(eps)``, the two-part code and the free energy of a model whose
learning coefficient is known, measured by nested sampling, beside the LLC estimator's value.

``case`` names a model of :data:`occamlab.slt.VOLUME_CASES` (its exact population loss ``K``,
prior box and exact ``lambda``, ``m``). The run measures the volume law
(:func:`occamlab.slt.measure_volume`, dynesty) and, with ``llc``, estimates the LLC of the torch
model of the same family at its true parameter (:func:`occamlab.slt.estimate_llc_calibrated`,
as the validation suite does). It writes ``volume.json`` (the :class:`VolumeLaw`) and
``llc.json`` (the :class:`LLCResult`); its result holds the headline numbers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from occamlab._config import ConfigBase
from occamlab._io import atomic_write_json
from occamlab.errors import ConfigError, check_seed
from occamlab.slt import CalibrationConfig, SGLDConfig

from ._registry import RunOutput

__all__ = ["Config", "run"]


@dataclass(frozen=True)
class Config(ConfigBase):
    """One known-lambda model's volume law.

    Parameters
    ----------
    case : str
        A name of :data:`occamlab.slt.VOLUME_CASES`.
    n_live, n_runs : int
        dynesty live points per run; independent runs, merged.
    eps_min, fit_lo, fit_hi : float
        ``V`` is measured from ``eps_min`` to 0.1; ``lambda`` and ``m`` are fitted on
        ``[fit_lo, fit_hi]``.
    n_replicates : int
        Resampled-and-jittered replicates for the bands.
    llc : bool
        Also estimate the LLC of the torch model of the same family (calibrated).
    sgld, calibration :
        The LLC estimator's settings.
    seed : int
    """

    case: str = "regular/linreg-2x1"
    n_live: int = 100
    n_runs: int = 1
    eps_min: float = 1e-11
    fit_lo: float = 1e-10
    fit_hi: float = 1e-3
    n_replicates: int = 100
    llc: bool = True
    sgld: SGLDConfig = field(default_factory=SGLDConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        from occamlab.slt import volume_case

        volume_case(self.case)  # a ConfigError naming the known cases
        check_seed(self.seed)
        if not (0 < self.eps_min <= self.fit_lo < self.fit_hi < 1):
            raise ConfigError(f"need 0 < eps_min <= fit_lo < fit_hi < 1, got {self.eps_min}, "
                              f"{self.fit_lo}, {self.fit_hi}")


def _llc(config: Config) -> tuple[dict[str, Any], Any]:
    from occamlab.slt import estimate_llc_calibrated, volume_case

    km = volume_case(config.case).build(config.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the result carries its own warnings
        res, _ = estimate_llc_calibrated(km.model, km.loss_fn, km.data, config.sgld,
                                         calibration=config.calibration, seed=config.seed)
    return {"llc": res.llc, "llc_stderr": res.llc_stderr, "llc_rhat": res.rhat,
            "llc_temperature": res.temperature, "llc_valid": res.valid,
            "llc_warnings": list(res.warnings), "llc_n": res.n}, res


def run(config: Config, run_dir: Path) -> RunOutput:
    from occamlab.slt import measure_volume, volume_case

    case = volume_case(config.case)
    vol = measure_volume(case.k, case.n_params, halfwidth=case.halfwidth, name=case.name,
                         eps_min=config.eps_min, fit_range=(config.fit_lo, config.fit_hi),
                         n_live=config.n_live, n_runs=config.n_runs,
                         n_replicates=config.n_replicates, truth=case.truth, seed=config.seed)
    atomic_write_json(Path(run_dir) / "volume.json", vol.to_dict())
    out: dict[str, Any] = {
        "case": case.name, "n_params": case.n_params, "truth_lambda": vol.truth_lambda,
        "truth_m": vol.truth_m, "lambda": vol.lambda_, "lambda_lo": vol.lambda_ci[0],
        "lambda_hi": vol.lambda_ci[1], "m": vol.multiplicity, "m_share": vol.m_share,
        "lambda_at_true_m": vol.lambda_at_true_m, "relative_error": vol.relative_error,
        "n_iter": vol.n_iter, "n_calls": vol.n_calls, "seconds": vol.seconds,
        "warnings": list(vol.warnings)}
    files = ["volume.json"]
    if config.llc:
        est, res = _llc(config)
        atomic_write_json(Path(run_dir) / "llc.json", res.to_dict())
        out.update(est)
        files.append("llc.json")
    return RunOutput(out, files=tuple(files))
