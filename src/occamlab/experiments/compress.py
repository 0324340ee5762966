"""The ``compress`` experiment: the critical compression threshold ``n_q`` of a checkpoint.

``n_q`` is the most aggressive compression (fewest bits for the ``rtn-*`` schemes, lowest rank for
``svd``) whose loss on ``data`` rises by at most ``epsilon`` nats per token, found by bisection
(:func:`occamlab.slt.critical_compression`); at ``n_q`` the two-part code length
``len(model_q) + n L_n(w_q) / ln 2`` bits is also reported, with ``n`` the predicted tokens.
The run writes ``compress.json`` (the full :class:`CompressionReport`).

``occam compress CHECKPOINT`` calls :func:`measure`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from occamlab._config import ConfigBase
from occamlab._io import atomic_write_json
from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError
from occamlab.slt import SCHEMES, CompressionResult, TwoPartCode

from ._lm import check_lm_fields, load_lm
from ._registry import RunOutput

__all__ = ["Config", "CompressionReport", "measure", "run"]


@dataclass(frozen=True)
class Config(ConfigBase):
    """One compression measurement of a checkpoint.

    Parameters
    ----------
    checkpoint, data, max_tokens :
        As for the ``llc`` experiment.
    scheme : {"rtn-tensor", "rtn-channel", "rtn-group", "svd"}
        Round-to-nearest quantization per tensor, per output channel or per group of
        ``group_size`` weights; or truncated SVD of each weight matrix.
    epsilon : float
        Tolerated loss increase, nats per token (> 0).
    group_size : int
    symmetric : bool
        Symmetric RTN (no zero point).
    """

    checkpoint: str = ""
    data: str = ""
    max_tokens: int = 65_536
    scheme: str = "rtn-channel"
    epsilon: float = 0.01
    group_size: int = 32
    symmetric: bool = False
    device: str = "auto"

    def __post_init__(self) -> None:
        check_lm_fields(self.checkpoint, self.data, self.max_tokens, self.device)
        if self.scheme not in SCHEMES:
            raise ConfigError(f"scheme must be one of {', '.join(SCHEMES)}, got {self.scheme!r}")
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ConfigError(f"epsilon must be a positive number of nats, got {self.epsilon!r}")
        if isinstance(self.group_size, bool) or self.group_size < 1:
            raise ConfigError(f"group_size must be a positive integer, got {self.group_size!r}")


@dataclass(frozen=True)
class CompressionReport(Rendered):
    """``n_q`` of a checkpoint and the two-part code length at ``n_q`` (``None`` when no level
    of the scheme stays within ``epsilon``)."""

    checkpoint: str
    data: str
    n_tokens: int
    compression: CompressionResult
    two_part_code: TwoPartCode | None = None

    def _tables(self) -> list[Table]:
        head = Table(f"Compression of {self.checkpoint}", ["", "value"],
                     [["data", self.data], ["predicted tokens n", self.n_tokens]])
        code = self.two_part_code._tables() if self.two_part_code is not None else []
        return [head, *self.compression._tables(), *code]


def measure(config: Config, *, run_dir: str | Path | None = None) -> CompressionReport:
    """``n_q`` of ``config.checkpoint`` on its data, and the two-part code at ``n_q``."""
    import warnings

    from occamlab.slt import critical_compression, two_part_code_length
    from occamlab.train import token_loss

    lm = load_lm(config.checkpoint, config.data, config.max_tokens, run_dir=run_dir,
                 device=config.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the result lists its own warnings
        res = critical_compression(lm.model, token_loss, lm.data, scheme=config.scheme,
                                   epsilon=config.epsilon, group_size=config.group_size,
                                   symmetric=config.symmetric)
    code = None
    if res.n_q is not None:  # the data part counts predicted tokens, not windows
        code = two_part_code_length(lm.model, token_loss, lm.data, scheme=config.scheme,
                                    level=res.n_q, n=lm.n_tokens, group_size=config.group_size,
                                    symmetric=config.symmetric)
    return CompressionReport(config.checkpoint, config.data, lm.n_tokens, res, code)


def run(config: Config, run_dir: Path) -> RunOutput:
    report = measure(config, run_dir=run_dir)
    atomic_write_json(Path(run_dir) / "compress.json", report.to_dict())
    res, code = report.compression, report.two_part_code
    out = {"n_q": res.n_q, "scheme": res.scheme, "epsilon": res.epsilon,
           "loss_base": res.loss_base, "loss_at_n_q": res.loss_at_n_q,
           "total_bits": None if code is None else code.total_bits,
           "model_bits": None if code is None else code.model_bits,
           "n_tokens": report.n_tokens, "warnings": list(res.warnings)}
    return RunOutput(out, files=("compress.json",))
