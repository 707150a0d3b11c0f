"""The MCMC engine's hand-written potential equals Pyro's: for the enumerated Pyro model,
``pyro.infer.mcmc.util.initialize_model`` builds ``-log p(theta, data)`` in the unconstrained
space (policy and manner summed out by enumeration, Jacobians of the transforms included).
:class:`scai.inference.potential.Potential` must give the same value and the same gradient at
random points, for every kind of latent site (``pi``; ``lam``; ``shift_shared``; ``shift``).
:class:`scai.inference.gradient_potential.GradientPotential` (what NUTS runs on: the gradient
derived by hand, in NumPy) must equal ``Potential`` and its autograd gradient, and the Laplace
start of the chains (:mod:`scai.inference.laplace`) must sit at a mode with the variances of the
inverse autograd Hessian."""

from __future__ import annotations

import pyro
import pytest
import torch
from pyro.infer.mcmc.util import initialize_model
from scai.inference.gradient_potential import GradientPotential
from scai.inference.laplace import laplace
from scai.inference.potential import Potential
from scai.models.hypotheses import PRESETS, Hypothesis
from scai.models.layout import GroupData
from scai.models.model import MAX_PLATE_NESTING, social_contract_model
from small_groups import three_mixed_groups

HYPOTHESES = {
    "neutral": PRESETS["neutral"],
    "latent_lam": Hypothesis(name="latent_lam", rationality=2.0, rationality_scale=0.5),
    "pooled": PRESETS["pooled"],
    "stereotyped_latent_lam": PRESETS["stereotyped"].with_(rationality_scale=0.3),
    "shift_and_lam": PRESETS["essential_goods_shared"].with_(rationality_scale=0.4),
}


@pytest.fixture
def data(float64) -> GroupData:
    """Built after ``float64``: a module-scoped fixture would be built first, in float32."""
    return three_mixed_groups()


def pyro_params(theta: torch.Tensor, potential: Potential) -> dict[str, torch.Tensor]:
    """Our flat vector as Pyro's unconstrained sites (same transforms, Pyro's shapes)."""
    lay = potential.layout
    cols = theta.reshape(lay.n_sims, lay.width)
    S, K, C = lay.n_sims, lay.n_policies, lay.n_currencies
    out = {"pi": cols[:, : K - 1].reshape(S, 1, 1, K - 1)}
    j = K - 1
    if lay.latent_lam:
        out["lam"] = cols[:, j].reshape(S, 1, 1)
        j += 1
    if lay.latent_shared:
        out["shift_shared"] = cols[:, j].reshape(S, 1, 1)
        j += 1
    if lay.latent_shift:
        out["shift"] = cols[:, j : j + C].reshape(S, 1, C)
    return out


@pytest.mark.parametrize("name", list(HYPOTHESES))
def test_potential_and_gradient_equal_pyros(float64, data, name):
    hyp = HYPOTHESES[name]
    pyro.set_rng_seed(0)
    _, pyro_potential, _, _ = initialize_model(
        social_contract_model,
        model_args=(data, hyp),
        max_plate_nesting=MAX_PLATE_NESTING,
    )
    ours = Potential(data, hyp)
    generator = torch.Generator().manual_seed(len(name))
    for _ in range(3):
        theta = ours.initial() + 0.5 * torch.randn(ours.layout.size, generator=generator)
        theta.requires_grad_(True)
        value = ours(theta)
        (grad,) = torch.autograd.grad(value, theta)
        theta_pyro = theta.detach().clone().requires_grad_(True)
        params = pyro_params(theta_pyro, ours)
        want = pyro_potential(params)
        (want_grad,) = torch.autograd.grad(want, theta_pyro)
        assert float(value.detach()) == pytest.approx(float(want.detach()), abs=1e-9)
        torch.testing.assert_close(grad, want_grad, rtol=1e-9, atol=1e-9)
    # the check has teeth: the gradient is not trivially zero in any coordinate block
    assert grad.abs().reshape(ours.layout.n_sims, -1).amax(0).min() > 1e-6


@pytest.mark.parametrize("name", list(HYPOTHESES))
def test_hand_gradient_equals_autograd(float64, data, name):
    hyp = HYPOTHESES[name]
    reference, fast = Potential(data, hyp), GradientPotential(data, hyp)
    generator = torch.Generator().manual_seed(len(name))
    for _ in range(3):
        theta = reference.initial() + 0.7 * torch.randn(reference.layout.size, generator=generator)
        x = theta.clone().requires_grad_(True)
        (want_grad,) = torch.autograd.grad(want := reference(x), x)
        y = theta.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(value := fast(y), y)
        assert float(value.detach()) == pytest.approx(float(want.detach()), rel=1e-12)
        torch.testing.assert_close(grad, want_grad, rtol=1e-9, atol=1e-9)
    assert grad.abs().reshape(fast.layout.n_sims, -1).amax(0).min() > 1e-6


@pytest.mark.parametrize("name", ["latent_lam", "shift_and_lam"])
def test_laplace_start_is_a_mode_with_the_hessians_variances(float64, data, name):
    hyp = HYPOTHESES[name]
    fast = GradientPotential(data, hyp)
    approx = laplace(fast)
    assert approx is not None
    _, grad = fast.value_and_grad(approx.mode)
    assert abs(grad).max() < 1e-3
    hessian = torch.autograd.functional.hessian(Potential(data, hyp), torch.tensor(approx.mode))
    want = torch.linalg.inv(hessian).diagonal().numpy()
    assert approx.variance == pytest.approx(want, rel=1e-4)
