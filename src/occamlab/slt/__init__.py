"""Singular learning theory in practice: LLC estimation, known learning coefficients, compression.

- :func:`estimate_llc` samples a localized tempered posterior with SGLD (plain or RMSProp-
  preconditioned, several chains vectorized with ``torch.func``) and returns an :class:`LLCResult`
  with its standard error, per-chain values, traces and diagnostics.
- :func:`regular_lambda`, :func:`normal_crossing_lambda`, :func:`rrr_lambda`, :func:`dln_lambda`
  give exact learning coefficients (fractions) and multiplicities; ``make_*`` build torch models
  at a true parameter with data for them.
- Compression: round-to-nearest quantizers and truncated-SVD low rank, the critical compression
  threshold ``n_q`` and the two-part code length.
- The volume law: :func:`measure_volume` measures ``V(eps) = Pr(K(w) < eps)`` by nested
  sampling (dynesty, optional), fits ``lambda`` and ``m``, and gives the two-part code's
  redundancy and the free energy at every ``n`` (:data:`VOLUME_CASES`: known-lambda models).
"""

from occamlab.slt._calibrate import (
    CalibrationConfig,
    CalibrationResult,
    calibrate_sgld,
    estimate_llc_calibrated,
)
from occamlab.slt._compress import (
    CompressionResult,
    TwoPartCode,
    asymptotic_redundancy,
    critical_compression,
    evaluate_loss,
    two_part_code_length,
)
from occamlab.slt._diagnostics import drift_z, effective_sample_size, split_rhat
from occamlab.slt._known import (
    LearningCoefficient,
    dln_lambda,
    normal_crossing_lambda,
    regular_lambda,
    rrr_lambda,
)
from occamlab.slt._llc import LLCResult, SGLDConfig, default_nbeta, estimate_llc, pin_nbeta
from occamlab.slt._models import (
    DeepLinear,
    KnownModel,
    NormalCrossing,
    gaussian_nll,
    make_dln,
    make_linear_regression,
    make_logistic_regression,
    make_normal_crossing,
    make_rrr,
)
from occamlab.slt._quantize import (
    SCHEMES,
    CompressionSpec,
    compress_model,
    compressed_bits,
    low_rank_tensor,
    quantize_tensor,
)
from occamlab.slt._sequence import LLCTrajectory, estimate_llc_trajectory
from occamlab.slt._validate import VALIDATION_CASES, ValidationResult, validate_llc
from occamlab.slt._volume import (
    VolumeLaw,
    fit_volume_law,
    free_energy,
    import_dynesty,
    measure_volume,
    two_part_redundancy,
)
from occamlab.slt._volume_cases import VOLUME_CASES, VolumeCase, volume_case

__all__ = [
    "LearningCoefficient",
    "regular_lambda",
    "normal_crossing_lambda",
    "rrr_lambda",
    "dln_lambda",
    "SGLDConfig",
    "LLCResult",
    "estimate_llc",
    "default_nbeta",
    "pin_nbeta",
    "split_rhat",
    "effective_sample_size",
    "drift_z",
    "KnownModel",
    "DeepLinear",
    "NormalCrossing",
    "gaussian_nll",
    "make_dln",
    "make_rrr",
    "make_linear_regression",
    "make_logistic_regression",
    "make_normal_crossing",
    "CalibrationConfig",
    "CalibrationResult",
    "calibrate_sgld",
    "estimate_llc_calibrated",
    "ValidationResult",
    "VALIDATION_CASES",
    "validate_llc",
    "SCHEMES",
    "CompressionSpec",
    "quantize_tensor",
    "low_rank_tensor",
    "compress_model",
    "compressed_bits",
    "CompressionResult",
    "TwoPartCode",
    "evaluate_loss",
    "critical_compression",
    "two_part_code_length",
    "asymptotic_redundancy",
    "LLCTrajectory",
    "estimate_llc_trajectory",
    "VolumeLaw",
    "measure_volume",
    "fit_volume_law",
    "two_part_redundancy",
    "free_energy",
    "import_dynesty",
    "VolumeCase",
    "VOLUME_CASES",
    "volume_case",
]
