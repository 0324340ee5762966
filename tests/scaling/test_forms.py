"""Law forms: closed-form values, analytic Jacobians against finite differences, parameter maps."""

from __future__ import annotations

import numpy as np
import pytest

from occamlab.errors import ConfigError
from occamlab.scaling import (
    Chinchilla,
    CustomForm,
    Kaplan,
    LossToLoss,
    Param,
    PowerLaw,
    SaturatingExp,
    Sigmoid,
    Transfer,
    get_form,
)
from occamlab.scaling._forms import LawForm


def test_chinchilla_predict_matches_formula() -> None:
    N, D = np.array([1e8, 7e10]), np.array([2e9, 1.4e12])
    p = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    expect = 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28
    np.testing.assert_allclose(Chinchilla().predict(p, N=N, D=D), expect, rtol=1e-13)


def test_other_forms_match_formulas() -> None:
    x = np.array([1e3, 1e5, 1e7])
    np.testing.assert_allclose(PowerLaw().predict({"E": 2.0, "A": 50.0, "alpha": 0.3}, x=x),
                               2.0 + 50.0 * x**-0.3, rtol=1e-13)
    np.testing.assert_allclose(PowerLaw(saturating=False).predict({"A": 50.0, "alpha": 0.3}, x=x),
                               50.0 * x**-0.3, rtol=1e-13)
    N, D = np.array([1e6, 1e8]), np.array([1e9, 1e7])
    kp = {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095}
    np.testing.assert_allclose(Kaplan().predict(kp, N=N, D=D),
                               ((8.8e13 / N) ** (0.076 / 0.095) + 5.4e13 / D) ** 0.095, rtol=1e-12)
    np.testing.assert_allclose(Transfer().predict({"k": 1.9e4, "alpha": 0.18, "beta": 0.38}, D_F=x, N=x),
                               1.9e4 * x**0.18 * x**0.38, rtol=1e-12)
    xs = np.array([2.5, 3.0])
    np.testing.assert_allclose(LossToLoss(E_x=1.5, E_y=2.0).predict({"K": 1.2, "kappa": 0.9}, x=xs),
                               1.2 * (xs - 1.5) ** 0.9 + 2.0, rtol=1e-13)
    np.testing.assert_allclose(SaturatingExp().predict({"eps": 0.75, "k": 3.0, "gamma": 0.5}, x=xs),
                               0.75 - 3.0 * np.exp(-0.5 * xs), rtol=1e-13)
    c = np.array([1e18, 1e20])
    sig = {"lo": 0.25, "hi": 0.9, "s": 2.0, "c": np.log(1e19)}
    np.testing.assert_allclose(Sigmoid().predict(sig, x=c),
                               0.25 + 0.65 / (1 + np.exp(-2.0 * (np.log(c) - np.log(1e19)))), rtol=1e-13)


FORMS_AND_THETA: list[tuple[LawForm, dict[str, np.ndarray], list[float]]] = [
    (Chinchilla(), {"N": np.geomspace(1e6, 1e10, 7), "D": np.geomspace(1e8, 1e12, 7)},
     [0.5, 6.0, 6.0, 0.34, 0.28]),
    (PowerLaw(), {"x": np.geomspace(1e3, 1e8, 6)}, [0.7, 4.0, 0.3]),
    (PowerLaw(saturating=False), {"x": np.geomspace(1e3, 1e8, 6)}, [4.0, 0.3]),
    (Transfer(), {"D_F": np.geomspace(1e3, 1e8, 5), "N": np.geomspace(1e5, 1e9, 5)}, [9.0, 0.2, 0.4]),
    (LossToLoss(E_x=1.0, E_y=1.5), {"x": np.array([1.5, 2.0, 3.0])}, [0.1, 0.9]),
    (SaturatingExp(), {"x": np.array([2.0, 3.0, 4.0])}, [0.7, 1.0, 0.6]),
]


@pytest.mark.parametrize("form,inputs,theta", FORMS_AND_THETA, ids=lambda v: getattr(v, "name", ""))
def test_analytic_jacobian_matches_finite_differences(form: LawForm, inputs: dict, theta: list) -> None:
    prep = form.prepare(inputs)
    t = np.array([theta])
    _, J = form.value_jac(t, prep)
    num = LawForm.value_jac(form, t, prep)[1]  # the base class's central differences
    np.testing.assert_allclose(J, num, rtol=1e-6, atol=1e-8)


def test_internal_natural_round_trip_and_bounds() -> None:
    f = Chinchilla()
    p = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    np.testing.assert_allclose(f.to_natural(f.to_internal(p)), list(p.values()), rtol=1e-14)
    with pytest.raises(ConfigError, match="must be > 0"):
        f.to_internal({**p, "A": -1.0})
    with pytest.raises(ConfigError, match="missing parameter"):
        f.to_internal({"E": 1.0})
    assert len(f.default_starts({}, np.ones(3))) == 4500


def test_custom_form_and_registry() -> None:
    form = CustomForm("line", lambda p, x: p["a"] + p["b"] * x, [Param("a"), Param("b")], space="linear")
    assert form.predict({"a": 1.0, "b": 2.0}, x=np.array([0.0, 1.0])).tolist() == [1.0, 3.0]
    assert get_form("chinchilla").name == "chinchilla"
    with pytest.raises(ConfigError, match="did you mean 'chinchilla'"):
        get_form("chinchila")
    with pytest.raises(ConfigError, match="space must be"):
        CustomForm("bad", lambda p, x: x, [Param("a")], space="cubic")
