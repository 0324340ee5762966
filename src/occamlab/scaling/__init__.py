"""Scaling laws: forms, robust multi-start fitting, honest uncertainty and extrapolation checks.

>>> from occamlab.scaling import fit, Chinchilla
>>> import numpy as np
>>> N = np.repeat([1e7, 3e7, 1e8, 3e8], 4); D = np.tile([2e8, 6e8, 2e9, 6e9], 4)
>>> truth = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
>>> L = Chinchilla().predict(truth, N=N, D=D)
>>> res = fit(Chinchilla(), {"N": N, "D": D, "loss": L})
>>> round(res.params["alpha"], 3), round(res.params["E"], 3)
(0.34, 1.69)

Importing this package imports numpy and scipy only (no torch, no matplotlib).
"""

from occamlab.scaling._data import read_table
from occamlab.scaling._fit import fit, hessian_covariance
from occamlab.scaling._forms import (
    FORMS,
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
    get_form,
)
from occamlab.scaling._result import FitResult, Prediction

__all__ = [
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
]
