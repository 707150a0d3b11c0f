"""One density behind every engine, equal to the Pyro model's: for the enumerated Pyro model,
``pyro.infer.mcmc.util.initialize_model`` builds ``-log p(theta, data)`` in the unconstrained
space (policy and manner summed out by enumeration, Jacobians of the transforms included).
:class:`scai.models.density.MarginalDensity` must give the same value and gradient at random
points, for every kind of latent site (``pi``; ``lam``; ``shift_shared``; ``shift``): its torch
reference (``log_joint``, autograd) and its NumPy backend (``value_and_grad``, the gradient
derived by hand, what NUTS runs on, for every hypothesis: lapses, role-dependent norms, clones
and a learned coupling with the rationality and shifts fixed or latent), to 1e-9 in float64.
Its prior part, its prior draws, the posterior's log prior and the exact engine's grid prior
are the same prior; and the Laplace start (:mod:`scai.inference.laplace`) sits at a mode with the
variances of the inverse autograd Hessian."""

from __future__ import annotations

import numpy as np
import pyro
import pytest
import torch
from pyro.infer.mcmc.util import initialize_model
from small_groups import RUDE_AS_NEUTRAL, padded_two_currency_groups, three_mixed_groups

from scai.inference.laplace import laplace
from scai.models.density import MarginalDensity
from scai.models.hypotheses import PRESETS, Hypothesis
from scai.models.layout import GroupData
from scai.models.model import MAX_PLATE_NESTING, group_parameters, social_contract_model
from scai.models.policies import PolicyType

ROLES = (
    PolicyType("selfish"),
    PolicyType("selfish_rejecting", norm="selfish", responder=(0.0, 0.5, 0.0)),
    PolicyType("fair", alpha=2.0, beta=2.0),
    PolicyType("altruistic", w=2.0),
)
HYPOTHESES = {
    "neutral": PRESETS["neutral"],
    "latent_lam": Hypothesis(name="latent_lam", rationality=2.0, rationality_scale=0.5),
    "pooled": PRESETS["pooled"],
    "stereotyped_latent_lam": PRESETS["stereotyped"].with_(rationality_scale=0.3),
    "shift_and_lam": PRESETS["essential_goods_shared"].with_(rationality_scale=0.4),
    "lapse_fixed": PRESETS["neutral"].with_(name="lapse_fixed", lapse=0.05),
    "lapse_latent": PRESETS["neutral"].with_(name="lapse_latent", lapse_prior=(2.0, 20.0)),
    "roles": Hypothesis(name="roles", policies=ROLES, pi_concentration=(0.5,) * 4),
    "coupling": PRESETS["stereotyped"].with_(name="coupling", stereotype_prior=(8.0, 2.0)),
    "clones": PRESETS["neutral"].with_(name="clones", clone_prior=(1.0, 1.0)),
    "everything": PRESETS["stereotyped"].with_(
        name="everything",
        rationality_scale=0.3,
        lapse_prior=(1.0, 30.0),
        stereotype_prior=(8.0, 2.0),
        clone_prior=(1.0, 3.0),
    ),
    "roles_latent_lam": Hypothesis(
        name="roles_latent_lam", policies=ROLES, pi_concentration=(0.5,) * 4, rationality_scale=0.4
    ),
    "real_agents": PRESETS["real_agents"],
    "real_agents_stereotyped": PRESETS["real_agents_stereotyped"],
    "real_agents_latent_lam": PRESETS["real_agents"].with_(rationality_scale=0.3),
    "real_agents_pooled_lam": PRESETS["real_agents_stereotyped"].with_(
        rationality_scale=0.3, shared_scale=0.5, currency_scale=0.1
    ),
    # a fixed lapse > 0 with the tables varying, and a shared shift alone (offset for essentials)
    "agents_fixed_lapse_shared": PRESETS["real_agents"].with_(
        name="agents_fixed_lapse_shared",
        lapse=0.05,
        lapse_prior=None,
        rationality_scale=0.3,
        shared_scale=0.5,
        essential_shift=1.5,
    ),
    # a latent lapse without clones, the tables varying (AgentMarginal's clone-free branch)
    "lapse_latent_lam_shift": PRESETS["neutral"].with_(
        name="lapse_latent_lam_shift",
        lapse_prior=(2.0, 20.0),
        rationality_scale=0.3,
        currency_scale=0.5,
        essential_shift=1.0,
    ),
    # tones read by a reader that mistakes rude and neutral for each other 30% of the time
    "read_tones": PRESETS["stereotyped"].with_(
        rationality_scale=0.3,
        reader_confusion=RUDE_AS_NEUTRAL,
    ),
}


@pytest.fixture
def data(float64) -> GroupData:
    """Built after ``float64``: a module-scoped fixture would be built first, in float32."""
    return three_mixed_groups()


def pyro_params(theta: torch.Tensor, density: MarginalDensity) -> dict[str, torch.Tensor]:
    """Our flat vector as Pyro's unconstrained sites (same transforms, Pyro's shapes)."""
    coords = density.coords
    cols = theta.reshape(coords.n_sims, coords.width)
    S = coords.n_sims
    scalar = (S, 1, 1)
    shapes = {"pi": (S, 1, 1, -1), "shift": (S, 1, -1)}
    return {
        name: cols[:, where].reshape(shapes.get(name, scalar))
        for name, where in density.columns.items()
    }


def assert_potentials_are_autograds(
    density: MarginalDensity, theta: torch.Tensor, prototype: np.ndarray | None
) -> np.ndarray:
    """The NumPy backend's potentials and gradient at ``theta`` (given ``prototype``) equal
    autograd on the torch reference's ``-log_joint``; returns the gradient."""
    x = theta.clone().requires_grad_(True)
    want = -density.log_joint(x, prototype)
    (want_grad,) = torch.autograd.grad(want.sum(), x)
    values, grad = density.potentials_and_grad(theta.numpy(), prototype)
    np.testing.assert_allclose(values, want.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad.numpy(), rtol=1e-9, atol=1e-9)
    return grad


@pytest.mark.parametrize("name", list(HYPOTHESES))
def test_potential_and_gradient_equal_pyros(float64, data, name):
    hyp = HYPOTHESES[name]
    pyro.set_rng_seed(0)
    _, pyro_potential, _, _ = initialize_model(
        social_contract_model,
        model_args=(data, hyp),
        max_plate_nesting=MAX_PLATE_NESTING,
    )
    ours = MarginalDensity(data, hyp)
    generator = torch.Generator().manual_seed(len(name))
    for _ in range(3):
        theta = ours.initial() + 0.5 * torch.randn(ours.coords.size, generator=generator)
        theta.requires_grad_(True)
        value = -ours.log_joint(theta).sum()
        (grad,) = torch.autograd.grad(value, theta)
        theta_pyro = theta.detach().clone().requires_grad_(True)
        params = pyro_params(theta_pyro, ours)
        want = pyro_potential(params)
        (want_grad,) = torch.autograd.grad(want, theta_pyro)
        assert float(value.detach()) == pytest.approx(float(want.detach()), abs=1e-9)
        torch.testing.assert_close(grad, want_grad, rtol=1e-9, atol=1e-9)
    # the check has teeth: the gradient is not trivially zero in any coordinate block
    assert grad.abs().reshape(ours.coords.n_sims, -1).amax(0).min() > 1e-6


@pytest.mark.parametrize("name", list(HYPOTHESES))
def test_hand_gradient_equals_autograd(float64, data, name):
    hyp = HYPOTHESES[name]
    density = MarginalDensity(data, hyp)
    generator = torch.Generator().manual_seed(len(name))
    for _ in range(3):
        theta = density.initial() + 0.7 * torch.randn(density.coords.size, generator=generator)
        x = theta.clone().requires_grad_(True)
        (want_grad,) = torch.autograd.grad(want := -density.log_joint(x).sum(), x)
        y = theta.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(value := density(y), y)
        assert float(value.detach()) == pytest.approx(float(want.detach()), rel=1e-12)
        torch.testing.assert_close(grad, want_grad, rtol=1e-9, atol=1e-9)
    assert grad.abs().reshape(density.coords.n_sims, -1).amax(0).min() > 1e-6


@pytest.mark.parametrize(
    "name",
    [
        "pooled",
        "shift_and_lam",
        "roles_latent_lam",
        "everything",
        "real_agents_pooled_lam",
        "lapse_latent_lam_shift",
    ],
)
def test_hand_gradient_with_padded_users_and_two_currencies_equals_autograd(float64, name):
    """On simulations of different sizes (the users plate padded) and one with two currencies
    (shifts of one simulation's cells summed per currency), the hand gradient of every
    backend still equals autograd on the torch reference; with clones, given a prototype too."""
    data = padded_two_currency_groups()
    assert not data.user_mask.all()
    density = MarginalDensity(data, HYPOTHESES[name])
    S = density.coords.n_sims
    generator = torch.Generator().manual_seed(11)
    prototypes = [None] + ([np.arange(S) % 3] if HYPOTHESES[name].clones else [])
    for prototype in prototypes * 2:
        theta = density.initial() + 0.7 * torch.randn(density.coords.size, generator=generator)
        grad = assert_potentials_are_autograds(density, theta, prototype)
    assert np.abs(grad).reshape(S, -1).max(0).min() > 1e-6


@pytest.mark.parametrize("name", ["clones", "everything", "real_agents_pooled_lam"])
def test_hand_gradient_with_a_prototype_equals_autograd(float64, data, name):
    """With clones, the sampler's potential given the prototype ``z0`` (one term of the
    prototype mixture, :mod:`scai.inference.sheets`) and the prototype's posterior."""
    from scai.models.marginal import prototype_posterior

    density = MarginalDensity(data, HYPOTHESES[name])
    S, K = density.coords.n_sims, len(HYPOTHESES[name].policies)
    generator = torch.Generator().manual_seed(7)
    for z in range(K):
        prototype = np.full(S, z)
        theta = density.initial() + 0.7 * torch.randn(density.coords.size, generator=generator)
        grad = assert_potentials_are_autograds(density, theta, prototype)
        cols = theta.reshape(S, -1)
        pi = density.stick(cols[:, density.columns["pi"]])
        weights, _ = prototype_posterior(
            pi.log(), density.user_loglik(cols), data.user_mask, density.bounded(cols)["clone"]
        )
        np.testing.assert_allclose(
            density.prototype_posterior(theta.numpy()), weights.numpy(), atol=1e-10
        )
    assert np.abs(grad).reshape(S, -1).max(0).min() > 1e-6


@pytest.mark.parametrize("name", ["latent_lam", "shift_and_lam"])
def test_laplace_start_is_a_mode_with_the_hessians_variances(float64, data, name):
    hyp = HYPOTHESES[name]
    density = MarginalDensity(data, hyp)
    approx = laplace(density)
    assert approx is not None
    _, grad = density.value_and_grad(approx.mode)
    assert abs(grad).max() < 1e-3

    def potential(theta):
        return -density.log_joint(theta).sum()

    hessian = torch.autograd.functional.hessian(potential, torch.tensor(approx.mode))
    want = torch.linalg.inv(hessian).diagonal().numpy()
    assert approx.variance == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("name", list(HYPOTHESES))
def test_prior_is_the_models_prior_everywhere(float64, data, name):
    """The density's prior part (torch and NumPy with its gradient) is the Pyro model's prior
    on the unconstrained scale, and ``GroupPrior.log_prob`` of the constrained draws (what
    ``Posterior.log_prior`` reports) differs from it by exactly the transforms' Jacobians."""
    hyp = HYPOTHESES[name]
    density = MarginalDensity(data, hyp)
    generator = torch.Generator().manual_seed(7)
    theta = density.sample_prior(5, generator).reshape(5, -1)  # [5, S * W]
    cols = theta.reshape(5, density.coords.n_sims, density.coords.width)
    torch_lp = density.log_prior(theta)  # [5, S]
    for row in range(5):
        lp_np, grad_np = density.prior.log_prob_unconstrained_np(
            cols[row].numpy(), density.coords, data.essential.numpy()
        )
        x = cols[row].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(
            density.prior.log_prob_unconstrained(x, density.coords, data.essential).sum(), x
        )
        torch.testing.assert_close(torch.as_tensor(lp_np), torch_lp[row], rtol=0, atol=1e-9)
        torch.testing.assert_close(torch.as_tensor(grad_np), grad, rtol=1e-9, atol=1e-9)
    # The Pyro model's prior (its continuous sites, ``group_parameters``) on Pyro's own
    # unconstrained scale, Jacobians included, must equal ours.
    pyro.set_rng_seed(0)
    _, pyro_potential, _, _ = initialize_model(
        group_parameters, model_args=(data, hyp), max_plate_nesting=MAX_PLATE_NESTING
    )
    for row in range(5):
        want = -pyro_potential(pyro_params(theta[row], density))
        assert float(torch_lp[row].sum()) == pytest.approx(float(want), abs=1e-9)
    # constrained: log p(sites) + log |d sites / d theta| = log p(theta)
    sites = density.constrain(theta)
    constrained = density.prior.log_prob(sites, data.essential)  # [5, S]
    sticks = cols[..., density.columns["pi"]]
    jacobian = density.stick.log_abs_det_jacobian(sticks, sites["pi"])
    if "lam" in sites:
        jacobian = jacobian + sites["lam"].log()
    for site in ("lapse", "strength", "clone"):  # sigmoid: dz/dx = z (1 - z)
        if site in sites:
            jacobian = jacobian + sites[site].log() + (-sites[site]).log1p()
    torch.testing.assert_close(constrained + jacobian, torch_lp, rtol=0, atol=1e-8)


def test_prior_draws_have_the_dirichlets_moments(float64, data):
    """``sample_prior`` (unconstrained, through the sticks) and ``GroupPrior.sample``
    (constrained) both draw ``pi`` with the Dirichlet's mean and variance (20,000 draws: the
    Monte Carlo sd of a mean is under 0.004), and the shifts with the prior's sds."""
    hyp = PRESETS["pooled"]
    density = MarginalDensity(data, hyp)
    a = torch.tensor(hyp.pi_concentration)
    mean, var = a / a.sum(), a / a.sum() * (1 - a / a.sum()) / (a.sum() + 1)
    generator = torch.Generator().manual_seed(3)
    theta = density.sample_prior(20000, generator).reshape(20000, -1)
    drawn = density.constrain(theta)
    direct = density.prior.sample((20000,), data.essential, generator)
    # tolerances from the Monte Carlo error of 20,000 draws: the sd of a sample mean is
    # sd / sqrt(n), of a sample variance sqrt((m4 - var^2) / n) (m4 the fourth central moment,
    # estimated from the draws), at a two-sided 0.01 Bonferroni-split over the 12 checks
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - 0.01 / (2 * 12))
    for pi in (drawn["pi"][:, 0], direct["pi"]):
        pi = pi.double()
        n = pi.shape[0]
        centred = pi - pi.mean(0)
        se_mean = pi.std(0) / n**0.5
        se_var = ((centred**4).mean(0) - pi.var(0) ** 2).clamp_min(0).sqrt() / n**0.5
        assert torch.all((pi.mean(0) - mean.double()).abs() <= z * se_mean), (pi.mean(0), se_mean)
        assert torch.all((pi.var(0) - var.double()).abs() <= z * se_var), (pi.var(0), var, se_var)
    total_sd = (hyp.shared_scale**2 + hyp.currency_scale**2) ** 0.5
    for shift in (drawn["shift"][:, 0], direct["shift"]):
        assert float(shift.std(0).max()) == pytest.approx(total_sd, rel=0.03)
    assert float(drawn["shift_shared"].std()) == pytest.approx(hyp.shared_scale, rel=0.03)


@pytest.mark.parametrize("name", ["neutral", "latent_lam", "shift_and_lam", "read_tones"])
def test_exact_engines_grid_density_is_the_same_density(float64, data, name):
    """At grid points ``(lam, shift)`` and lattice points ``pi``, the exact engine's kernels
    (the action log-likelihood on a grid, and the group log-likelihood that sums decided users
    in closed form) equal the density's torch reference, 1e-9."""
    from scai.inference.exact_kernels import decided_users, grid_action_loglik, lattice_group_loglik
    from scai.inference.grids.simplex import simplex_lattice
    from scai.models.marginal import group_loglik, tone_loglik, user_loglik

    hyp = HYPOTHESES[name]
    density = MarginalDensity(data, hyp)
    generator = torch.Generator().manual_seed(11)
    theta = density.sample_prior(4, generator)  # [4, S, W]
    lam, shift = density.parameters(theta)  # [4, S], [4, S, C]
    # the grid shares each point across simulations: use simulation 0's values for all
    lam_t, shift_t = lam[:, 0], shift[:, 0]
    action = grid_action_loglik(data, hyp, lam_t, shift_t)  # [4, S, U, K]
    S = data.shape[0]
    want = user_loglik(data, hyp, lam_t[:, None].expand(-1, S), shift_t[:, None].expand(-1, S, -1))
    mask = data.user_mask.double()
    L = (action + tone_loglik(data, hyp)) * mask.unsqueeze(-1)
    torch.testing.assert_close(L, want, rtol=0, atol=1e-9)
    pi_grid = simplex_lattice(len(hyp.policies), 300).double()
    if name == "neutral":  # both kinds of users occur: summed in closed form, and mixed
        is_decided = decided_users(L, pi_grid)[0][:, data.user_mask]
        assert is_decided.any() and not is_decided.all()
    kernel = lattice_group_loglik(L, mask, pi_grid)  # [4, S, G]
    reference = group_loglik(pi_grid.log()[:, None, None, :], L.unsqueeze(0), data.user_mask)
    torch.testing.assert_close(kernel, reference.permute(1, 2, 0), rtol=0, atol=1e-9)


def test_product_form_of_the_pi_only_group_equals_the_log_sum_exp_form(float64):
    """With only ``pi`` latent the NumPy backend takes ``G`` in product form
    (``NumpyMarginal.group_of_pi``): the same value and gradient as the log-sum-exp form, on
    a padded layout (a simulation with fewer users), at ordinary points and where ``m = E pi``
    underflows (every ``pi_k`` ~ e^-800: the log-sum-exp form answers there)."""
    import numpy as np
    import pandas as pd

    from scai.models.simulate import simulate

    hyp = PRESETS["neutral"]
    five = simulate(hyp, policy="selfish=0.5,fair=0.5", users=5, rounds=5, epochs=2, seed=3)
    three = simulate(hyp, policy="selfish=0.5,fair=0.5", users=3, rounds=3, epochs=2, seed=4)
    three.interactions["sim"] = "1"
    data = GroupData.from_table(pd.concat([five.interactions, three.interactions]))
    marginal = MarginalDensity(data, hyp).numpy
    assert marginal.padded
    rng = np.random.default_rng(0)
    points = [np.log(rng.dirichlet([1.0, 1.0, 1.0], size=2)) for _ in range(5)]
    points.append(np.full((2, 3), -800.0))
    for log_pi in points:
        want = marginal.group(log_pi, None, None, False, False)
        got = marginal.group_of_pi(log_pi)
        assert np.all(np.isfinite(got.value))
        np.testing.assert_allclose(got.value, want.value, rtol=1e-12)
        np.testing.assert_allclose(got.d_log_pi, want.d_log_pi, rtol=1e-9, atol=1e-12)


def test_the_compiled_lapse_mixture_is_numpys_formula_at_every_lapse():
    """``log P = logaddexp(log eps + log v, log(1 - eps) + log p)`` and its derivatives in
    ``eps`` and ``log p`` (:func:`scai.models.kernels.lapse_cells`, which shares one ``exp``
    between them inside ``(0, 1)``) against NumPy's formulas term by term, at lapses ``0``,
    ``1e-300``, ``0.3``, ``1`` and cells of probability 0 (``inf`` and ``nan`` where NumPy's
    have them)."""
    from scai.models.kernels import lapse_cells

    rng = np.random.default_rng(0)
    eps = np.array([0.0, 1e-300, 0.3, 1.0])
    cell_sim = np.repeat(np.arange(4), 5)
    log_rational = np.log(rng.dirichlet(np.ones(3), size=len(cell_sim)))
    log_rational[::4, 1] = -np.inf  # an offer the type never makes
    log_uniform = -np.log(rng.integers(2, 100, size=len(cell_sim)).astype(float))
    with np.errstate(all="ignore"):
        e = eps[cell_sim][:, None]
        slip = np.log(e) + log_uniform[:, None]
        kept = np.log1p(-e) + log_rational
        log_p = np.logaddexp(slip, kept)
        d_eps = np.exp(log_uniform[:, None] - log_p) - np.exp(log_rational - log_p)
        d_rational = np.exp(kept - log_p)
        got = lapse_cells(log_rational, eps, cell_sim, log_uniform)
    for value, want in zip(got, (log_p, d_eps, d_rational), strict=True):
        np.testing.assert_allclose(value, want, rtol=1e-13, atol=1e-300, equal_nan=True)


@pytest.mark.parametrize("fixed", [0.0, 0.1], ids=["no fixed lapse", "a fixed lapse"])
@pytest.mark.parametrize("shared", [False, True], ids=["per-simulation", "shared"])
def test_the_lapse_mixed_into_scored_cells_equals_lapsed_tables(shared, fixed):
    """A posterior's draws of the lapse alone are scored with the rational tables once and the
    lapse mixed into the scored cells (``lapse_on_cells``): what mixing it into whole tables per
    draw gives, to float32 rounding (45 s for 20 simulations of 1,000 draws, now 0.1 s)."""
    from scai.models.marginal import user_loglik
    from scai.models.simulate import simulate

    # (a drawn lapse replaces the hypothesis's fixed one, which must not be mixed in twice)
    hyp = PRESETS["neutral"].with_(lapse_prior=(1.0, 30.0), lapse=fixed)
    sim = simulate(hyp, policy="selfish=0.5,fair=0.5", users=6, rounds=4, epochs=2, sims=3)
    data = GroupData.from_table(sim.interactions)
    S, C = data.shape[0], len(data.currencies)
    B = 7
    lapse = torch.rand(B, 1 if shared else S, generator=torch.Generator().manual_seed(0)) * 0.4
    lam, shift = torch.full((1, S), hyp.rationality), torch.zeros(1, S, C)
    tables = user_loglik(data, hyp, lam.expand(B, S), shift.expand(B, S, C), lapse=lapse)
    cells = user_loglik(data, hyp, lam, shift, lapse=lapse, lapse_on_cells=True)
    assert cells.shape == tables.shape == (B, S, data.shape[1], len(hyp.policies))
    torch.testing.assert_close(cells, tables, rtol=1e-5, atol=1e-5)
    # and the lapse matters: without it the values differ by far more than that
    none = user_loglik(data, hyp, lam, shift, lapse=torch.zeros_like(lapse), lapse_on_cells=True)
    assert float((none - tables).abs().max()) > 1e-2


@pytest.mark.parametrize("name", ["stereotyped", "essential_goods_shared", "pooled"])
def test_fixed_values_shared_by_the_simulations_score_as_each_simulations_own(name):
    """Fixed rationality and shifts are the same in every simulation: scored with a
    simulation dimension of 1 (one set of action tables), the users' log-likelihoods are
    bit for bit those of each simulation's own values, padded users and two currencies too."""
    from scai.models.marginal import shared_by_simulations, user_loglik

    data = padded_two_currency_groups()
    hypothesis = PRESETS[name].with_(rationality_scale=0.0, shared_scale=0.0, currency_scale=0.0)
    density = MarginalDensity(data, hypothesis)
    lam, shift = density.fixed_values()  # [S], [S, C]
    lam_1, shift_1 = shared_by_simulations(lam, shift)
    assert lam_1.shape == (1,) and shift_1.shape == (1, len(data.currencies))
    own = user_loglik(data, hypothesis, lam, shift, density.index, density.tones)
    assert torch.equal(density.fixed_loglik, own)
    differ = lam.clone()
    differ[1] += 0.5
    assert shared_by_simulations(differ, shift)[0] is differ  # left as given


def test_each_simulation_s_pots_are_its_cells_pots_and_the_largest():
    """:func:`simulation_pots`: a simulation's slots hold the pots its cells play, in order,
    spare slots the data's largest pot, which some slot always holds (so that the tables'
    offers run to it); a simulation without cells gets the largest pot alone."""
    from scai.models.layout import simulation_pots

    sim = torch.tensor([0, 0, 0, 2, 2, 2])
    pot = torch.tensor([3, 1, 3, 0, 2, 1])
    sim_pots, slot = simulation_pots(sim, pot, S=3, P=5)
    assert sim_pots.tolist() == [[1, 3, 4], [4, 4, 4], [0, 1, 2]]
    assert torch.equal(sim_pots[sim, slot], pot)
    # every simulation plays as many pots as the widest, none the largest: one slot more
    sim_pots, slot = simulation_pots(torch.tensor([0, 1]), torch.tensor([0, 1]), S=2, P=3)
    assert sim_pots.tolist() == [[0, 2], [1, 2]]
    # nothing to score
    empty = torch.zeros(0, dtype=torch.long)
    assert simulation_pots(empty, empty, S=2, P=3)[0].tolist() == [[2], [2]]


@pytest.mark.parametrize("name", ["pooled", "real_agents", "neutral"])
def test_tables_of_each_simulation_s_own_pots_score_as_tables_of_all_pots(name, monkeypatch):
    """Parameters that differ by simulation (posterior draws, SVI, MCMC) build each
    simulation's tables over the pots it plays only (5 of the data's 60 here): the users'
    log-likelihoods are bit for bit those of tables over every pot, per-simulation lapses too."""
    from scai.models import marginal
    from scai.models.simulate import simulate

    hypothesis = (
        PRESETS[name].with_(lapse_prior=(1.0, 30.0)) if name == "neutral" else PRESETS[name]
    )
    policy = "selfish=0.5,fair=0.3,altruistic=0.2"
    games = dict(
        users=4, rounds=2, epochs=5, sims=20, currency=["dollars", "medicine"] * 10, seed=2
    )
    table = simulate(hypothesis, policy=policy, **games).interactions
    data = GroupData.from_table(table)
    S, C = data.shape[0], len(data.currencies)
    generator = torch.Generator().manual_seed(0)
    lam = torch.rand(3, S, generator=generator) * 3 + 0.2
    shift = torch.randn(3, S, C, generator=generator)
    lapse = torch.rand(3, S, generator=generator) * 0.1 if name == "neutral" else None
    index = marginal.EventIndex.from_data(data)
    assert index.sim_pots.shape[1] < len(data.pots) / 5
    own = marginal.user_loglik(data, hypothesis, lam, shift, index, lapse=lapse)
    monkeypatch.setattr(marginal, "own_pots", lambda data, index: None)
    every = marginal.user_loglik(data, hypothesis, lam, shift, index, lapse=lapse)
    assert torch.equal(own, every)


@pytest.mark.parametrize("name", ["latent_lam", "lapse_latent", "real_agents_latent_lam"])
def test_the_density_s_fixed_utilities_over_each_simulation_s_own_pots(float64, name, monkeypatch):
    """With the shifts fixed, ``MarginalDensity`` computes the utilities once, over each
    simulation's own pots, and ``action_loglik`` reads them at the cells' slots: the log joint
    is bit for bit the one of utilities over every pot of the data."""
    from scai.models import density as density_module
    from scai.models.simulate import simulate

    hyp = HYPOTHESES[name]
    games = dict(users=4, rounds=2, epochs=3, sims=6, seed=5)
    data = GroupData.from_table(simulate(hyp, policy="selfish=0.5,fair=0.5", **games).interactions)
    own = MarginalDensity(data, hyp)
    assert own.utilities.pots.shape[:-1] == (6, 1, 1)  # each simulation's own
    theta = own.initial() + 0.4 * torch.randn(
        4, own.coords.size, generator=torch.Generator().manual_seed(2)
    )
    monkeypatch.setattr(density_module, "own_pots", lambda data, index: None)
    every = MarginalDensity(data, hyp)
    assert every.utilities.pots.dim() == 1
    assert torch.equal(own.log_joint(theta), every.log_joint(theta))


@pytest.mark.parametrize("name", ["pooled", "lapse_latent_lam_shift", "everything"])
def test_the_models_tables_of_each_simulation_s_own_pots_give_pyros_potential(float64, name):
    """Where a gradient flows to the tables' parameters (SVI), the Pyro model builds each
    simulation's tables over the pots it plays (``GroupData.pot_slots``): Pyro's potential
    and its gradient are those of tables over every pot of the data, and a minibatch of users
    reads its own events' slots."""
    from scai.models.layout import GroupData as Layout
    from scai.models.simulate import simulate

    hyp = HYPOTHESES[name]
    games = dict(users=4, rounds=2, epochs=3, sims=4, currency=["dollars", "medicine"] * 2, seed=4)
    data = GroupData.from_table(simulate(hyp, policy="selfish=0.5,fair=0.5", **games).interactions)
    sim_pots, slots = data.pot_slots()
    assert sim_pots.shape[1] < len(data.pots) / 2
    assert torch.equal(sim_pots[torch.arange(4)[:, None, None], slots][data.event_mask],
                       data.pot_index[data.event_mask])  # fmt: skip
    ours = MarginalDensity(data, hyp)
    theta = ours.initial() + 0.3 * torch.randn(
        ours.coords.size, generator=torch.Generator().manual_seed(1)
    )

    def potential_and_grad():
        pyro.set_rng_seed(0)
        _, potential, _, _ = initialize_model(
            social_contract_model, model_args=(data, hyp), max_plate_nesting=MAX_PLATE_NESTING
        )
        x = theta.clone().requires_grad_(True)
        value = potential(pyro_params(x, ours))
        return value.detach(), torch.autograd.grad(value, x)[0]

    def minibatch_log_prob():
        shapes = {"pi": (4, 1, 1, -1), "shift": (4, 1, -1)}
        sites = ours.constrain(theta.clone().requires_grad_(True))
        values = {k: v.reshape(shapes.get(k, (4, 1, 1))) for k, v in sites.items()}
        pyro.set_rng_seed(3)  # the same users, types and manners drawn
        conditioned = pyro.poutine.condition(social_contract_model, data=values)
        trace = pyro.poutine.trace(conditioned).get_trace(data, hyp, subsample_size=2)
        return trace.log_prob_sum().detach()

    own = potential_and_grad(), minibatch_log_prob()
    every = (torch.arange(len(data.pots)).expand(4, -1), data.pot_index)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Layout, "pot_slots", lambda self: every)
        all_pots = potential_and_grad(), minibatch_log_prob()
    torch.testing.assert_close(own[0][0], all_pots[0][0], rtol=1e-13, atol=0)
    torch.testing.assert_close(own[0][1], all_pots[0][1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(own[1], all_pots[1], rtol=1e-13, atol=0)


@pytest.mark.parametrize("events", [0, 1, 7, 5000])
def test_user_cell_counts_are_the_coalesced_matrix(events):
    """The event index's CSR counts, built in NumPy, are torch's COO of ones coalesced and
    converted (the same row pointers, columns in row-major order, counts, dtypes), for events
    in any order with repeats; a user with no event has an empty row."""
    import warnings

    from scai.models.marginal import user_cell_counts

    generator = torch.Generator().manual_seed(events)
    n_users, n_cells = 40, 30
    user = torch.randint(0, n_users - 1, (events,), generator=generator)  # the last: none
    cell = torch.randint(0, n_cells, (events,), generator=generator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = (
            torch.sparse_coo_tensor(
                torch.stack([user, cell]),
                torch.ones(events, dtype=torch.get_default_dtype()),
                (n_users, n_cells),
            )
            .coalesce()
            .to_sparse_csr()
        )
        got = user_cell_counts(user.numpy(), cell.numpy(), n_users, n_cells)
    for part in ("crow_indices", "col_indices", "values"):
        a, b = getattr(expected, part)(), getattr(got, part)()
        assert a.dtype == b.dtype and torch.equal(a, b), part
    assert got.shape == expected.shape
    dense = torch.zeros(n_users, n_cells).index_put_((user, cell), torch.ones(events), True)
    assert torch.equal(got.to_dense(), dense)


def test_per_user_builds_the_transpose_only_for_a_gradient():
    """``EventIndex.per_user`` gives the same numbers with and without autograd; the CSR
    transpose its backward pass uses is built only once a gradient is wanted, and the
    gradient is ``counts.T @ grad``."""
    from scai.models.marginal import EventIndex

    table = simulate_table()
    index = EventIndex.from_data(GroupData.from_table(table))
    n_cells = index.counts.shape[1]
    values = torch.randn(n_cells, 3, generator=torch.Generator().manual_seed(1))
    plain = index.per_user(values)
    assert index.counts_t is None
    leaf = values.clone().requires_grad_()
    traced = index.per_user(leaf)
    assert index.counts_t is not None and torch.equal(traced.detach(), plain)
    weights = torch.randn(traced.shape, generator=torch.Generator().manual_seed(2))
    (traced * weights).sum().backward()
    torch.testing.assert_close(leaf.grad, index.counts.to_dense().T @ weights)


def simulate_table():
    from scai.models.simulate import simulate

    return simulate(
        PRESETS["neutral"], policy="selfish=0.5,fair=0.5", users=4, rounds=2, sims=3, seed=1
    ).interactions


def test_a_bounded_draw_rounded_to_0_or_1_has_a_finite_prior_density():
    """Draws are stored in float32, where a strength within 6e-8 of 1 is 1.0; under
    ``stereotype_prior = (1e4, 0.01)`` its Beta density there is infinite, and half the draws'
    log joint was +inf (ArviZ's lp too; MCMC's stuck-chain check then saw inf - inf). Scored at
    the nearest float64 inside (0, 1): finite, and the same elsewhere."""
    from scai.models.prior import GroupPrior

    prior = GroupPrior(PRESETS["stereotyped"].with_(stereotype_prior=(1e4, 1e-2)))
    sites = {"pi": torch.tensor([[0.2, 0.3, 0.5]] * 3)}
    sites["strength"] = torch.tensor([1.0, 0.999, 0.0], dtype=torch.float32)
    lp = prior.log_prob(sites, torch.zeros(1))
    assert torch.isfinite(lp).all(), lp
    inside = prior.bounded_dist("strength").log_prob(
        torch.tensor(0.999, dtype=torch.float32).double()
    )
    assert float(lp[1] - lp[0]) < 0  # 1.0 is the likelier, as the density rises to it
    assert float(lp[1]) == pytest.approx(
        float(prior.pi_dist().log_prob(sites["pi"][1].double()) + inside)
    )
