"""estimate_llc: exact invariances, SGD limit, truth on small known models, bad input, contract."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
from torch import nn

from occamlab.errors import ConfigError, ConvergenceWarning, DataError
from occamlab.slt import (
    LLCResult,
    SGLDConfig,
    estimate_llc,
    gaussian_nll,
    make_linear_regression,
    make_rrr,
)
from occamlab.slt._sgld import ResolvedSGLD, run_chains

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::occamlab.errors.ConvergenceWarning")

SHORT = SGLDConfig(step_size=3e-3, gamma=10.0, n_chains=3, n_draws=120, n_burnin=60)


@pytest.fixture(scope="module")
def linreg():  # type: ignore[no-untyped-def]
    return make_linear_regression(3, 2, n=2000, seed=1)


def test_doubling_loss_and_halving_nbeta_is_exactly_invariant(linreg) -> None:  # type: ignore[no-untyped-def]
    cfg = SGLDConfig(step_size=1e-4, gamma=5.0, nbeta=300.0, n_chains=2, n_draws=50, n_burnin=10,
                     sampler="sgld", batch_size=256)

    def double(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 2.0 * gaussian_nll(out, y)

    a = estimate_llc(linreg.model, linreg.loss_fn, linreg.data, cfg, seed=3)
    b = estimate_llc(linreg.model, double, linreg.data, SGLDConfig(**{**cfg.__dict__, "nbeta": 150.0}), seed=3)
    assert a.llc == pytest.approx(b.llc, rel=1e-12, abs=0)
    assert a.llc_per_chain == pytest.approx(b.llc_per_chain, rel=1e-12)
    # the same holds for the preconditioned sampler
    cfg2 = SGLDConfig(**{**cfg.__dict__, "sampler": "rmsprop_sgld", "step_size": 1e-3})
    a2 = estimate_llc(linreg.model, linreg.loss_fn, linreg.data, cfg2, seed=3)
    b2 = estimate_llc(linreg.model, double, linreg.data,
                      SGLDConfig(**{**cfg2.__dict__, "nbeta": 150.0}), seed=3)
    assert a2.llc == pytest.approx(b2.llc, rel=1e-12, abs=0)


def test_zero_noise_zero_localization_is_plain_sgd(linreg) -> None:  # type: ignore[no-untyped-def]
    model = linreg.model
    x, y = linreg.data
    # start away from the minimum so that SGD moves
    start = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        start.weight.copy_(model.layers[0].weight + 0.3)
    eps, nbeta, steps = 1e-3, 200.0, 25
    gen = torch.Generator().manual_seed(7)
    settings = ResolvedSGLD(
        params=("weight",), nbeta=nbeta, step_size=eps, gamma=0.0, n_chains=1, n_draws=steps,
        n_burnin=0, thin=1, batch_size=64, sampler="sgld", rmsprop_alpha=0.99,
        rmsprop_delta=1.0, noise_level=0.0, divergence_threshold=1e30, vectorize=True,
    )
    run = run_chains(start, gaussian_nll, x, y, settings, generator=gen)
    ref = nn.Linear(3, 2, bias=False)
    ref.load_state_dict(start.state_dict())
    opt = torch.optim.SGD(ref.parameters(), lr=eps * nbeta / 2)
    gen2 = torch.Generator().manual_seed(7)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (1, 64), generator=gen2)[0]
        opt.zero_grad()
        gaussian_nll(ref(x[idx]), y[idx]).backward()
        opt.step()
        torch.randn((1, 2, 3), generator=gen2)  # the sampler draws (zero-scaled) noise too
    torch.testing.assert_close(run.final["weight"][0], ref.weight.detach(), rtol=1e-5, atol=1e-6)
    assert not torch.equal(run.final["weight"][0], start.weight.detach())


def test_regular_model_estimate_near_d_over_2(linreg) -> None:  # type: ignore[no-untyped-def]
    res = estimate_llc(linreg.model, linreg.loss_fn, linreg.data,
                       SGLDConfig(step_size=1e-2, n_chains=4, n_draws=600, n_burnin=200), seed=0)
    assert res.llc == pytest.approx(3.0, rel=0.1)  # truth d/2 = 3 (seeds 0-3: 3.01 to 3.34)
    assert res.n == 2000 and res.nbeta == pytest.approx(2000 / math.log(2000))
    assert res.gamma == pytest.approx(res.nbeta / 100)
    assert len(res.llc_per_chain) == 4 and res.llc_stderr > 0
    assert len(res.llc_trace[0]) == 600 and len(res.loss_trace[0]) == 800
    assert 0.95 < res.temperature < 1.1


def test_rrr_estimate_near_truth() -> None:
    km = make_rrr(4, 3, 4, 1, n=5000, seed=0)
    res = estimate_llc(km.model, km.loss_fn, km.data, SGLDConfig(step_size=9e-3, n_draws=400),
                       seed=1)
    assert res.llc == pytest.approx(6.0, rel=0.2)


def test_vectorized_and_sequential_agree(linreg) -> None:  # type: ignore[no-untyped-def]
    a = estimate_llc(linreg.model, linreg.loss_fn, linreg.data,
                     SGLDConfig(**{**SHORT.__dict__, "vectorize": True}), seed=2)
    b = estimate_llc(linreg.model, linreg.loss_fn, linreg.data,
                     SGLDConfig(**{**SHORT.__dict__, "vectorize": False}), seed=2)
    assert a.vectorized and not b.vectorized
    assert a.llc == pytest.approx(b.llc, rel=1e-4)


def test_same_seed_same_result_and_weights_untouched(linreg) -> None:  # type: ignore[no-untyped-def]
    before = linreg.model.layers[0].weight.detach().clone()
    a = estimate_llc(linreg.model, linreg.loss_fn, linreg.data, SHORT, seed=5)
    b = estimate_llc(linreg.model, linreg.loss_fn, linreg.data, SHORT, seed=5)
    c = estimate_llc(linreg.model, linreg.loss_fn, linreg.data, SHORT, seed=6)
    assert a.llc == b.llc and a.llc != c.llc
    assert torch.equal(before, linreg.model.layers[0].weight.detach())


def test_weight_refined_llc_counts_only_sampled_parameters() -> None:
    km = make_rrr(4, 3, 4, 1, n=3000, seed=0)
    names = [k for k, _ in km.model.named_parameters()]
    res = estimate_llc(km.model, km.loss_fn, km.data,
                       SGLDConfig(**{**SHORT.__dict__, "params": (names[1],)}), seed=0)
    assert res.n_params == 12
    with pytest.raises(ConfigError, match="did you mean"):
        estimate_llc(km.model, km.loss_fn, km.data,
                     SGLDConfig(params=(names[1] + "x",)), seed=0)


def test_data_as_loader_of_batches(linreg) -> None:  # type: ignore[no-untyped-def]
    x, y = linreg.data
    loader = [(x[i : i + 500], y[i : i + 500]) for i in range(0, 2000, 500)]
    a = estimate_llc(linreg.model, linreg.loss_fn, loader, SHORT, seed=1)
    b = estimate_llc(linreg.model, linreg.loss_fn, (x, y), SHORT, seed=1)
    assert a.llc == b.llc and a.n == 2000


def test_divergent_step_stops_chains_and_never_returns_inf(linreg) -> None:  # type: ignore[no-untyped-def]
    cfg = SGLDConfig(step_size=5.0, gamma=1.0, sampler="sgld", n_chains=2, n_draws=50, n_burnin=5)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        res = estimate_llc(linreg.model, linreg.loss_fn, linreg.data, cfg, seed=0)
    assert all(s is not None for s in res.diverged)
    assert not math.isinf(res.llc) and math.isnan(res.llc)
    assert any("diverged" in w for w in res.warnings)
    json.dumps(res.to_dict(), allow_nan=False)
    assert "diverged" in str(res)


def test_not_a_minimum_warns(linreg) -> None:  # type: ignore[no-untyped-def]
    moved = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        moved.weight.copy_(linreg.model.layers[0].weight + 0.5)
    with pytest.warns(ConvergenceWarning, match="not a local minimum"):
        res = estimate_llc(moved, gaussian_nll, linreg.data, SHORT, seed=0)
    assert res.llc < 0


def test_bad_input(linreg) -> None:  # type: ignore[no-untyped-def]
    x, y = linreg.data
    drop = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.1), nn.Linear(8, 2))
    with pytest.raises(ConfigError, match="model.eval"):
        estimate_llc(drop, gaussian_nll, (x, y), SHORT, seed=0)
    estimate_llc(drop.eval(), gaussian_nll, (x, y),  # eval mode is fine
                 SGLDConfig(**{**SHORT.__dict__, "n_draws": 12, "n_burnin": 0}), seed=0)

    def per_example(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (out - t).pow(2).sum(1)

    def summed(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (out - t).pow(2).sum()

    with pytest.raises(ConfigError, match="scalar"):
        estimate_llc(linreg.model, per_example, (x, y), SHORT, seed=0)
    with pytest.raises(ConfigError, match="sum over the batch"):
        estimate_llc(linreg.model, summed, (x, y), SHORT, seed=0)
    with pytest.raises(DataError, match="empty"):
        estimate_llc(linreg.model, gaussian_nll, [], SHORT, seed=0)
    with pytest.raises(DataError, match="rows"):
        estimate_llc(linreg.model, gaussian_nll, (x, y[:10]), SHORT, seed=0)
    with pytest.raises(ConfigError, match="did you mean 'sgld'"):
        SGLDConfig(sampler="sgdl")
    with pytest.raises(ConfigError, match="step_size"):
        SGLDConfig(step_size=-1.0)
    with pytest.raises(ConfigError, match="n_chains"):
        SGLDConfig(n_chains=0)
    with pytest.raises(ConfigError, match="unknown config key 'stepsize'.*did you mean 'step_size'"):
        SGLDConfig.from_dict({"stepsize": 1.0})


def test_contract(linreg, result_contract) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = estimate_llc(linreg.model, linreg.loss_fn, linreg.data, SHORT, seed=0)
    result_contract(res)
    back = LLCResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.llc == res.llc and back.config == res.config
    d = res.to_dict()
    for key in ("llc", "llc_stderr", "llc_per_chain", "nbeta", "n", "warnings"):
        assert key in d
    assert "<table" in res._repr_html_() and "Local learning coefficient" in str(res)


def test_minibatch_heat_is_measured_and_warned(linreg) -> None:  # type: ignore[no-untyped-def]
    """Small minibatches heat SGLD; the configurational temperature sees it (exact: 1)."""
    base = dict(step_size=3e-3, sampler="sgld", gamma=2.0, n_chains=4, n_draws=300, n_burnin=100)
    full = estimate_llc(linreg.model, linreg.loss_fn, linreg.data, SGLDConfig(**base), seed=0)
    with pytest.warns(ConvergenceWarning, match="run hot"):
        small = estimate_llc(linreg.model, linreg.loss_fn, linreg.data,
                             SGLDConfig(**base, batch_size=16), seed=0)
    assert small.temperature > full.temperature + 0.1
    assert small.llc > full.llc


class _TinyAttention(nn.Module):
    """A one-layer causal attention model: scaled_dot_product_attention has no vmap batching rule
    on CPU, so the sampler must switch to one model copy per chain."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb = nn.Parameter(0.3 * torch.randn(5, 8, generator=g))
        self.qkv = nn.Linear(8, 24)
        self.out = nn.Linear(8, 5)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.emb[idx]
        q, k, v = self.qkv(h).unsqueeze(1).split(8, dim=-1)
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(a.squeeze(1) + h)


def _token_ce(logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), t.reshape(-1))


def test_attention_model_goes_sequential_and_threads_do_not_change_numbers() -> None:
    g = torch.Generator().manual_seed(1)
    seq = torch.randint(0, 5, (300, 7), generator=g)
    model = _TinyAttention().eval()
    cfg = SGLDConfig(step_size=1e-4, gamma=100.0, n_chains=3, n_draws=30, n_burnin=5,
                     batch_size=16, sampler="sgld")
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = estimate_llc(model, _token_ce, (seq[:, :-1], seq[:, 1:]), cfg, seed=4)
        torch.set_num_threads(2)  # two chain threads, one kernel thread each
        two = estimate_llc(model, _token_ce, (seq[:, :-1], seq[:, 1:]), cfg, seed=4)
        assert torch.get_num_threads() == 2  # the caller's setting is restored
    finally:
        torch.set_num_threads(old)
    assert not one.vectorized and not two.vectorized
    assert one.llc_per_chain == two.llc_per_chain  # bit for bit
    assert math.isfinite(one.llc)


def test_losses_at_w_star_are_those_of_each_minibatch(linreg) -> None:  # type: ignore[no-untyped-def]
    """L_B(w*) of every step equals the loss at w* on that step's minibatch: from the cached
    per-example losses for a mean of per-example terms, from a forward pass per step otherwise."""
    x, y = linreg.data
    c, b, steps, d = 2, 64, 30, 6
    settings = ResolvedSGLD(
        params=("layers.0.weight",), nbeta=300.0, step_size=1e-3, gamma=5.0, n_chains=c,
        n_draws=steps, n_burnin=0, thin=1, batch_size=b, sampler="sgld", rmsprop_alpha=0.99,
        rmsprop_delta=1.0, noise_level=1.0, divergence_threshold=1e30, vectorize=True,
    )

    def not_separable(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # a mean over the batch, but not of per-example terms: the cache must be rejected
        return gaussian_nll(out, t) + 0.5 * out.mean() ** 2

    for loss in (gaussian_nll, not_separable):
        run = run_chains(linreg.model, loss, x, y, settings, generator=torch.Generator().manual_seed(3))
        replay = torch.Generator().manual_seed(3)  # the sampler's draws: batch, then noise
        with torch.no_grad():
            for t in range(steps):
                idx = torch.randint(0, x.shape[0], (c, b), generator=replay)
                want = torch.stack([loss(linreg.model(x[i]), y[i]) for i in idx]).double()
                torch.testing.assert_close(run.init_trace[:, t], want, rtol=1e-5, atol=1e-7)
                torch.randn((c, d), generator=replay)


def test_models_with_an_ensemble_forward_run_their_chains_through_it() -> None:
    """occamlab's Transformer evaluates all chains in one ensemble pass: the chains take the
    same path as with one model copy each (to float32 rounding), the backend is recorded, a
    weight-refined run (other parameters fixed) works, and the per-chain numbers do not depend
    on the thread count."""
    from occamlab.train import ModelConfig, Transformer

    model = Transformer(ModelConfig(vocab_size=6, context=8, d_model=16, n_layer=1, n_head=2),
                        seed=0).eval()
    seq = torch.randint(0, 6, (400, 9), generator=torch.Generator().manual_seed(3))
    data = (seq[:, :-1], seq[:, 1:])
    kw = dict(step_size=1e-4, gamma=100.0, n_chains=4, n_draws=40, n_burnin=5, batch_size=16,
              sampler="sgld")
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        ens = estimate_llc(model, _token_ce, data, SGLDConfig(**kw), seed=1)
        copies = estimate_llc(model, _token_ce, data, SGLDConfig(**kw, vectorize=False), seed=1)
        part = estimate_llc(model, _token_ce, data,
                            SGLDConfig(**kw, params=("blocks.0.mlp.fc.weight", "ln_f.bias")),
                            seed=1)
        torch.set_num_threads(2)  # two groups of two chains, one kernel thread each
        two = estimate_llc(model, _token_ce, data, SGLDConfig(**kw), seed=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(old)
    assert (ens.chain_backend, copies.chain_backend) == ("ensemble", "copies")
    assert ens.vectorized and not copies.vectorized
    assert ens.llc_per_chain == pytest.approx(copies.llc_per_chain, rel=1e-4)
    assert ens.llc_per_chain == two.llc_per_chain  # bit for bit
    assert part.chain_backend == "ensemble" and part.n_params == 16 * 64 + 16
    assert math.isfinite(part.llc) and part.llc < ens.llc
    assert LLCResult.from_dict(json.loads(json.dumps(ens.to_dict()))).chain_backend == "ensemble"


def test_pin_nbeta_fixes_the_default_n_beta_once(linreg) -> None:  # type: ignore[no-untyped-def]
    from occamlab.slt import default_nbeta, pin_nbeta

    pinned = pin_nbeta(SGLDConfig(), 1000)
    assert pinned.nbeta == default_nbeta(1000) == 1000 / math.log(1000)
    assert pinned == SGLDConfig(nbeta=1000 / math.log(1000))  # nothing else changes
    explicit = SGLDConfig(nbeta=50.0)
    assert pin_nbeta(explicit, 1000) is explicit  # a config that sets n beta keeps it
    for bad in (1, True, 2.5, -3):
        with pytest.raises(ConfigError, match="n must be an integer >= 2"):
            pin_nbeta(SGLDConfig(), bad)  # type: ignore[arg-type]
    # the estimate at n with the default n beta samples what a pinned config samples
    # (the default gamma follows n beta in both)
    cfg = SGLDConfig(**{**SHORT.__dict__, "gamma": None})
    a = estimate_llc(linreg.model, linreg.loss_fn, linreg.data, cfg, seed=1, n=30_000)
    b = estimate_llc(linreg.model, linreg.loss_fn, linreg.data, pin_nbeta(cfg, 30_000), seed=1,
                     n=30_000)
    assert (a.nbeta, a.gamma, a.llc_per_chain) == (b.nbeta, b.gamma, b.llc_per_chain)


def _random_calls() -> list[tuple[str, object]]:
    from occamlab import slt

    lin = make_linear_regression(2, 1, n=100, seed=0)
    args = (lin.model, lin.loss_fn, lin.data)
    return [
        ("estimate_llc", lambda seed: slt.estimate_llc(*args, seed=seed)),
        ("calibrate_sgld", lambda seed: slt.calibrate_sgld(*args, seed=seed)),
        ("estimate_llc_calibrated", lambda seed: slt.estimate_llc_calibrated(*args, seed=seed)),
        ("estimate_llc_trajectory",
         lambda seed: slt.estimate_llc_trajectory([lin.model], lin.loss_fn, lin.data, seed=seed)),
        ("validate_llc", lambda seed: slt.validate_llc(["regular/linreg-5x4"], seed=seed)),
        ("make_dln", lambda seed: slt.make_dln([2, 2], 1, n=10, seed=seed)),
        ("make_rrr", lambda seed: slt.make_rrr(2, 2, 2, 1, n=10, seed=seed)),
        ("make_linear_regression", lambda seed: slt.make_linear_regression(2, 1, n=10, seed=seed)),
        ("make_normal_crossing", lambda seed: slt.make_normal_crossing([1], n=10, seed=seed)),
        ("make_logistic_regression",
         lambda seed: slt.make_logistic_regression(2, n=10, seed=seed)),
    ]


@pytest.mark.parametrize("bad", [-1, True, 1.5, "0", None])
def test_every_random_function_checks_its_seed(bad: object) -> None:
    for name, call in _random_calls():
        with pytest.raises(ConfigError, match="seed must be a non-negative integer"):
            call(bad)  # type: ignore[operator]
        assert name


def test_seed_defaults_to_zero(linreg) -> None:  # type: ignore[no-untyped-def]
    a = estimate_llc(linreg.model, linreg.loss_fn, linreg.data, SHORT)
    b = estimate_llc(linreg.model, linreg.loss_fn, linreg.data, SHORT, seed=0)
    assert a.llc_per_chain == b.llc_per_chain
    assert make_rrr(4, 3, 4, 1, n=50).data[1].equal(make_rrr(4, 3, 4, 1, n=50, seed=0).data[1])


def test_valid_means_no_warnings(linreg) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from occamlab.slt import estimate_llc_trajectory

    res = estimate_llc(linreg.model, linreg.loss_fn, linreg.data,
                       SGLDConfig(step_size=1e-2, n_chains=4, n_draws=300, n_burnin=200), seed=0)
    assert res.valid and res.warnings == ()
    bad = replace(res, warnings=("R-hat 1.2 > 1.1",))
    assert not bad.valid
    assert "valid" not in res.to_dict()  # a property, not a field: not serialized
    traj = estimate_llc_trajectory([linreg.model], linreg.loss_fn, linreg.data, SHORT, seed=0)
    assert traj.valid == traj.results[0].valid
    with pytest.warns(ConvergenceWarning):
        hot = estimate_llc(linreg.model, linreg.loss_fn, linreg.data,
                           SGLDConfig(step_size=5.0, gamma=1.0, sampler="sgld", n_chains=2,
                                      n_draws=20, n_burnin=5), seed=0)
    assert not hot.valid
    assert not estimate_llc_trajectory([linreg.model], linreg.loss_fn, linreg.data,
                                       hot.config, seed=0).valid
