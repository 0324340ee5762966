"""The ``llc`` experiment: the local learning coefficient of a checkpoint on language-model data.

Windows of ``data`` at the checkpoint's context are the ``n`` examples of ``L_n`` (``n`` counts
predicted tokens, so the default ``n beta = n / log n`` is per token), and the loss is the mean
next-token cross-entropy in nats (:func:`occamlab.train.token_loss`). With ``calibrate`` the
step size is chosen by pilot chains first and the estimate checks its own chains
(:func:`occamlab.slt.estimate_llc_calibrated`). The run writes ``llc.json`` (the full
:class:`LLCReport`, traces included); its result holds the headline numbers and diagnostics.

``occam llc CHECKPOINT`` calls :func:`estimate`; ``occam llc CKPT1 CKPT2 ...`` calls
:func:`trajectory` (the same data, settings and seed at every checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from occamlab._config import ConfigBase
from occamlab._io import atomic_write_json
from occamlab._render import Rendered, Table
from occamlab.errors import check_seed
from occamlab.slt import (
    CalibrationConfig,
    CalibrationResult,
    LLCResult,
    LLCTrajectory,
    SGLDConfig,
)

from ._lm import check_lm_fields, load_lm
from ._registry import RunOutput

__all__ = ["Config", "LLCReport", "estimate", "trajectory", "run"]


def _default_sgld() -> SGLDConfig:
    return SGLDConfig(batch_size=16)


@dataclass(frozen=True)
class Config(ConfigBase):
    """One LLC estimate of a checkpoint.

    Parameters
    ----------
    checkpoint : str
        A checkpoint directory or a run directory (its best checkpoint).
    data : str
        A corpus name (``occam data list``) or a ``.npy`` token file.
    max_tokens : int
        Predicted tokens of ``data`` to use (the ``n`` of ``L_n``).
    sgld : SGLDConfig
        Sampler settings (minibatch of 16 windows by default).
    calibrate : bool
        Choose the step size with pilot chains first, and rerun hot estimates at smaller steps.
    calibration : CalibrationConfig
        The pilots' lengths and pass criteria (used with ``calibrate``).
    seed : int
    device : str
        ``auto`` (the first CUDA device when torch sees one, else the CPU), ``cpu`` or ``cuda``.
    """

    checkpoint: str = ""
    data: str = ""
    max_tokens: int = 65_536
    sgld: SGLDConfig = field(default_factory=_default_sgld)
    calibrate: bool = False
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_lm_fields(self.checkpoint, self.data, self.max_tokens, self.device)
        check_seed(self.seed)


@dataclass(frozen=True)
class LLCReport(Rendered):
    """An LLC estimate (one checkpoint) or trajectory (several), with the calibration behind it."""

    checkpoints: tuple[str, ...]
    data: str
    n_tokens: int
    result: LLCResult | LLCTrajectory
    calibration: CalibrationResult | None = None
    device: str = "cpu"

    def _tables(self) -> list[Table]:
        head = Table("LLC of " + ", ".join(self.checkpoints), ["", "value"],
                     [["data", self.data], ["predicted tokens n", self.n_tokens],
                      ["device", self.device]])
        cal = self.calibration._tables() if self.calibration is not None else []
        return [head, *cal, *self.result._tables()]


def _log(progress: Callable[[str], None] | None, obj: Any) -> None:
    if progress is not None:
        progress(str(obj))


def estimate(config: Config, *, progress: Callable[[str], None] | None = None,
             run_dir: str | Path | None = None) -> LLCReport:
    """The LLC of ``config.checkpoint`` (calibrated first when ``config.calibrate``)."""
    from occamlab.slt import estimate_llc, estimate_llc_calibrated
    from occamlab.train import token_loss

    lm = load_lm(config.checkpoint, config.data, config.max_tokens, run_dir=run_dir,
                 device=config.device)
    cal = None
    if config.calibrate:
        res, cal = estimate_llc_calibrated(lm.model, token_loss, lm.data, config.sgld,
                                           calibration=config.calibration, seed=config.seed,
                                           n=lm.n_tokens)
        _log(progress, cal)
    else:
        res = estimate_llc(lm.model, token_loss, lm.data, config.sgld, seed=config.seed,
                           n=lm.n_tokens)
    return LLCReport((config.checkpoint,), config.data, lm.n_tokens, res, cal, lm.device)


def trajectory(config: Config, checkpoints: Sequence[str], *,
               progress: Callable[[str], None] | None = None) -> LLCReport:
    """The LLC at each of ``checkpoints`` with the same data, settings and seed; with
    ``config.calibrate`` the step is calibrated once, on the first checkpoint."""
    from occamlab.slt import calibrate_sgld, estimate_llc_trajectory, pin_nbeta
    from occamlab.train import token_loss

    first = load_lm(checkpoints[0], config.data, config.max_tokens, device=config.device)
    mcfg = first.model.config
    models = [first.model] + [load_lm(c, config.data, config.max_tokens, like=mcfg,
                                      device=config.device).model for c in checkpoints[1:]]
    sgld, cal = config.sgld, None
    if config.calibrate:
        sgld = pin_nbeta(sgld, first.n_tokens)  # the pilots sample the estimate's posterior
        cal = calibrate_sgld(first.model, token_loss, first.data, sgld,
                             calibration=config.calibration, seed=config.seed)
        _log(progress, cal)
        sgld = cal.recommended
    res = estimate_llc_trajectory(models, token_loss, first.data, sgld, seed=config.seed,
                                  labels=list(checkpoints), n=first.n_tokens)
    return LLCReport(tuple(checkpoints), config.data, first.n_tokens, res, cal, first.device)


def run(config: Config, run_dir: Path) -> RunOutput:
    report = estimate(config, run_dir=run_dir)
    atomic_write_json(Path(run_dir) / "llc.json", report.to_dict())
    res = report.result
    assert isinstance(res, LLCResult)
    out: dict[str, Any] = {
        "llc": res.llc, "llc_stderr": res.llc_stderr, "nbeta": res.nbeta, "n": res.n,
        "gamma": res.gamma, "step_size": res.config.step_size, "n_draws": res.config.n_draws,
        "rhat": res.rhat, "ess": res.ess, "temperature": res.temperature,
        "loss_init": res.loss_init, "n_params": res.n_params, "valid": not res.warnings,
        "warnings": list(res.warnings), "calibrated": config.calibrate,
        "device": report.device,
    }
    return RunOutput(out, files=("llc.json",))




