"""The built-in law forms by name (:func:`get_form`), those of :mod:`._forms` and
:mod:`._forms_nd` together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from occamlab.errors import ConfigError, suggest
from occamlab.scaling._forms import (
    Chinchilla,
    Kaplan,
    LawForm,
    LossToLoss,
    PowerLaw,
    SaturatingExp,
    Sigmoid,
    Transfer,
)
from occamlab.scaling._forms_nd import CoupledChinchilla

FORMS: dict[str, Callable[[], LawForm]] = {
    "chinchilla": Chinchilla,
    "kaplan": Kaplan,
    "kaplan-irreducible": lambda: Kaplan(irreducible=True),
    "coupled-chinchilla": CoupledChinchilla,
    "power-law": PowerLaw,
    "pure-power-law": lambda: PowerLaw(saturating=False),
    "transfer": Transfer,
    "loss-to-loss": LossToLoss,
    "saturating-exp": SaturatingExp,
    "sigmoid": Sigmoid,
}


def get_form(name: str, **kwargs: Any) -> LawForm:
    """A built-in form by name (``chinchilla``, ``kaplan``, ``power-law``, ...)."""
    if name not in FORMS:
        raise ConfigError(f"unknown law form {name!r}{suggest(name, FORMS)}; known: {sorted(FORMS)}")
    if name == "loss-to-loss":
        return LossToLoss(**kwargs)
    if kwargs:
        raise ConfigError(f"form {name!r} takes no options, got {sorted(kwargs)}")
    return FORMS[name]()
