"""Scaling laws: forms, robust multi-start fitting, honest uncertainty and extrapolation checks.

>>> from occamlab.scaling import fit, Chinchilla
>>> import numpy as np
>>> N = np.repeat([1e7, 3e7, 1e8, 3e8], 4); D = np.tile([2e8, 6e8, 2e9, 6e9], 4)
>>> truth = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
>>> L = Chinchilla().predict(truth, N=N, D=D)
>>> res = fit(Chinchilla(), {"N": N, "D": D, "loss": L})
>>> round(res.params["alpha"], 3), round(res.params["E"], 3)
(0.34, 1.69)

Importing this package imports numpy and scipy only (no torch, no matplotlib: the ``plot_*``
functions import it when called, pandas is imported when a file is read).

Argument names: ``loss`` is always a column (or value) of losses; ``loss_fn`` is the robust loss
function of a fit (``"huber"`` or ``"lsq"``); ``target`` is the column of observed values of a
generic :func:`fit`; ``n``, ``d``, ``flops`` are the columns of ``N`` (parameters), ``D`` (tokens)
and ``C`` (FLOPs). Every function that draws random numbers takes a keyword-only ``seed: int = 0``.
Status of every result with diagnostics: ``converged`` (the optimizer's own stopping criterion),
``warnings``, and ``valid`` (all its diagnostics passed).
"""

from occamlab.scaling._allocation import (
    Allocation,
    allocation_from_params,
    default_budgets,
    optimal_allocation,
    tokens_from_flops,
)
from occamlab.scaling._bundled import DATASETS, load_dataset
from occamlab.scaling._calibrate import CalibratedExtrapolation, calibrate_extrapolation
from occamlab.scaling._chinchilla import ChinchillaReport, fit_chinchilla
from occamlab.scaling._data import column, read_table
from occamlab.scaling._downstream import (
    VERDICTS,
    DownstreamResult,
    MetricVerdict,
    classify_downstream,
)
from occamlab.scaling._extrapolate import (
    ExtrapolationResult,
    extrapolation_check,
    leave_one_group_out,
)
from occamlab.scaling._fit import fit, hessian_covariance
from occamlab.scaling._form_names import FORMS, get_form
from occamlab.scaling._forms import (
    Chinchilla,
    CustomForm,
    Kaplan,
    LawForm,
    LossToLoss,
    Param,
    PowerLaw,
    SaturatingExp,
    Sigmoid,
    Transfer,
)
from occamlab.scaling._forms_nd import CoupledChinchilla
from occamlab.scaling._isoflop import IsoflopResult, fit_isoflop
from occamlab.scaling._loss_to_loss import LossToLossResult, fit_loss_to_loss
from occamlab.scaling._plot import plot_backtests, plot_extrapolation, plot_fit, plot_isoflop
from occamlab.scaling._result import FitResult, Prediction
from occamlab.scaling._transfer import TransferResult, effective_data_transferred, fit_transfer

__all__ = [
    "Allocation",
    "CalibratedExtrapolation",
    "calibrate_extrapolation",
    "CoupledChinchilla",
    "plot_backtests",
    "ChinchillaReport",
    "fit_chinchilla",
    "DownstreamResult",
    "ExtrapolationResult",
    "IsoflopResult",
    "LossToLossResult",
    "MetricVerdict",
    "TransferResult",
    "VERDICTS",
    "allocation_from_params",
    "default_budgets",
    "tokens_from_flops",
    "classify_downstream",
    "effective_data_transferred",
    "extrapolation_check",
    "fit_isoflop",
    "fit_loss_to_loss",
    "fit_transfer",
    "leave_one_group_out",
    "optimal_allocation",
    "DATASETS",
    "load_dataset",
    "FORMS",
    "Chinchilla",
    "CustomForm",
    "FitResult",
    "Kaplan",
    "LawForm",
    "LossToLoss",
    "Param",
    "PowerLaw",
    "Prediction",
    "SaturatingExp",
    "Sigmoid",
    "Transfer",
    "fit",
    "get_form",
    "hessian_covariance",
    "read_table",
    "column",
    "plot_fit",
    "plot_isoflop",
    "plot_extrapolation",
]
