"""Large populations: simulating many users, and minibatch SVI (``subsample_size``).

* Simulation of many users: shapes, one proposal and one response per user and epoch when
  ``rounds == users``, and determinism for a seed.
* The minibatch ELBO is unbiased: with ``pi`` held fixed (a guide with no latent left), the
  loss of the enumerated model on ``B`` of ``U`` users, scaled by the ``users`` plate by
  ``U / B``, averages to the full-data loss within its Monte Carlo error (4 standard errors of
  the mean of ``N`` minibatch losses, the standard error estimated from those losses). A
  missing or wrong scale would miss by about ``(1 - B / U)`` of the users' log-likelihood:
  hundreds of standard errors here.
* Minibatch SVI agrees with the exact engine: ``pi``'s mean within ``AGREE_SD`` of the exact
  posterior sd (``neutral``, one group of 300 users, minibatches of 30, 200 steps from the
  prior median: the exact sd of each component is 0.024-0.029, above the default lattice's
  spacing of 0.013, so the exact mean is not a lattice artefact). A mean-field normal guide on
  ``pi``'s stick-breaking coordinates matches a near-Gaussian posterior's mean; what is left
  is the step-size schedule's remaining jitter and the 1,000 guide draws' Monte Carlo error
  (``sd / sqrt(1000)``, 0.03 sd). Measured over seeds 0-2: at most 0.35 sd.
"""

from __future__ import annotations

import math

import pyro
import pytest
import torch
from pyro.infer import TraceEnum_ELBO

from scai.inference.exact import fit_exact
from scai.inference.svi import fit_svi
from scai.models.hypotheses import Hypothesis, get_hypothesis
from scai.models.layout import GroupData
from scai.models.model import MAX_PLATE_NESTING, social_contract_model
from scai.models.simulate import simulate

NORM = "selfish=0.5,fair=0.3,altruistic=0.2"
#: Minibatch SVI's pi mean within this many exact posterior sds of the exact engine's.
AGREE_SD = 0.5


def group(users: int, seed: int = 0) -> GroupData:
    sim = simulate(Hypothesis(), policy=NORM, users=users, rounds=users, epochs=2, seed=seed)
    return GroupData.from_table(sim.interactions)


def test_simulate_many_users_shapes_and_determinism():
    users = 20_000
    one = simulate(Hypothesis(), policy=NORM, users=users, rounds=users, epochs=2, seed=3)
    assert len(one.interactions) == 2 * users
    assert len(one.users) == users and one.users["user"].is_unique
    # rounds == users: every user proposes once and responds once per epoch
    for column in ("proposer", "responder"):
        assert (one.interactions[column].value_counts() == 2).all()
    assert (one.interactions["proposer"] != one.interactions["responder"]).all()
    data = GroupData.from_table(one.interactions)
    assert data.shape == (1, users, 4)
    again = simulate(Hypothesis(), policy=NORM, users=users, rounds=users, epochs=2, seed=3)
    assert one.interactions.equals(again.interactions) and one.users.equals(again.users)
    other = simulate(Hypothesis(), policy=NORM, users=users, rounds=users, epochs=2, seed=4)
    assert not one.interactions.equals(other.interactions)


def test_minibatch_elbo_is_unbiased():
    data = group(400)
    hypothesis = Hypothesis()
    pi = torch.tensor([0.45, 0.35, 0.2]).expand(1, 1, 1, 3)

    def model(subsample=None):
        fixed = pyro.poutine.condition(social_contract_model, data={"pi": pi})
        return fixed(data, hypothesis, subsample_size=subsample)

    def guide(subsample=None):  # nothing latent is left but the enumerated sites
        pass

    elbo = TraceEnum_ELBO(max_plate_nesting=MAX_PLATE_NESTING)
    full = elbo.loss(model, guide)
    assert full == pytest.approx(elbo.loss(model, guide), rel=1e-6)  # deterministic
    pyro.set_rng_seed(0)
    losses = torch.tensor([elbo.loss(model, guide, subsample=40) for _ in range(100)])
    se = float(losses.std()) / math.sqrt(len(losses))
    assert abs(float(losses.mean()) - full) < 4 * se
    # and the scale matters: unscaled, the minibatch would hold a tenth of the loss
    assert abs(full / 10 - full) > 100 * se


def test_minibatch_svi_agrees_with_exact():
    data = group(300, seed=1)
    hypothesis = Hypothesis()
    exact = fit_exact(data, hypothesis)
    exact_mean = exact.pi_mean_exact[0]
    exact_sd = exact.flat_draws("pi")[:, 0].std(0)
    assert (exact_sd > 0.013).all()  # wider than the lattice's spacing
    svi = fit_svi(
        data,
        hypothesis,
        subsample_size=30,
        init="median",
        correction=None,
        max_steps=200,
        seed=0,
    )
    assert svi.settings["subsample_size"] == 30 and svi.diagnostics["converged"]
    svi_mean = svi.flat_draws("pi")[:, 0].mean(0)
    assert ((svi_mean - exact_mean).abs() / exact_sd).max() < AGREE_SD


def test_minibatch_svi_sd_matches_exact_with_many_users_per_batch():
    """With ``U / B`` large the scales' gradient is buried in the minibatches' noise: 200 steps
    of 20 of 2,000 users left the guide's sd 1.7-2.0x the exact sd (seed 0; 1.2-2.0x over
    seeds 0-2). The scales are then set from the minibatches' curvature
    (``_curvature_scales``): the sd must be within 0.8-1.25 of the exact engine's. Its errors:
    the curvature from 10 minibatches of 20 users (measured over seeds 0-2: ratios
    0.90-1.07), the 1,000 draws' 2% Monte Carlo error, and the mean-field guide's narrower
    sds where coordinates correlate (1 / sqrt(H_ii), below the marginal sd)."""
    data = group(2000, seed=0)
    hypothesis = Hypothesis()
    exact_sd = fit_exact(data, hypothesis).flat_draws("pi")[:, 0].std(0)
    svi = fit_svi(
        data,
        hypothesis,
        subsample_size=20,
        init="median",
        correction=None,
        max_steps=200,
        seed=0,
    )
    assert svi.diagnostics["curvature_scales"]
    ratio = svi.flat_draws("pi")[:, 0].std(0) / exact_sd
    assert ((ratio > 0.8) & (ratio < 1.25)).all(), ratio


@pytest.mark.filterwarnings("ignore:SVI stopped at max_steps")  # 20 steps: any guide will do
@pytest.mark.parametrize("preset", ["neutral", "real_agents_stereotyped"])
def test_per_user_means_a_block_of_draws_at_a_time_equal_all_at_once(preset, monkeypatch):
    """A posterior of many users averages each user's type and manner probabilities over
    blocks of draws (memory); the blocks must give the all-at-once means (to rounding).
    ``neutral`` takes the shortcut of distinct users (only ``pi`` varies across draws);
    ``real_agents_stereotyped`` learns the coupling and the clone probability per group, so
    its manners and types depend on every draw."""
    import scai.inference.posterior as posterior_module

    hypothesis = get_hypothesis(preset)
    sim = simulate(hypothesis, policy=NORM, users=30, rounds=30, epochs=2, seed=1)
    data = GroupData.from_table(sim.interactions)
    post = fit_svi(data, hypothesis, max_steps=20, num_draws=60, correction=None, init="median")
    S, U, _ = data.shape
    monkeypatch.setattr(posterior_module, "MEAN_BLOCK", 7 * S * U * len(post.policy_names))
    shortcuts = []
    by_distinct_user = posterior_module.Posterior._means_by_distinct_user
    monkeypatch.setattr(
        posterior_module.Posterior,
        "_means_by_distinct_user",
        lambda self: shortcuts.append(1) or by_distinct_user(self),
    )
    types, manners = post._draw_means()  # blocks of 7 draws, the last one shorter
    assert len(shortcuts) == (preset == "neutral")
    # sums of 60 probabilities in another order: at most 60 roundings apart
    tolerance = 60 * torch.finfo(types.dtype).eps
    assert torch.allclose(types, post.policy_probs, rtol=0, atol=tolerance)
    assert torch.allclose(manners, post.manner_probs, rtol=0, atol=tolerance)
    assert not torch.allclose(manners, post.manner_probs.roll(1, -1), atol=1e-3)  # not constant


def test_minibatch_curvature_is_taken_in_float64_and_latent_scalars_are_warned_of(monkeypatch):
    """The minibatch guide's scales come from the density's curvature: taken in float32, a
    sharp coordinate's was rounding noise (log lam at 10^5 users: the wrong sign), and lam's
    sd came out 20x too narrow (``benchmarks/bench_large.py --rationality-scale 0.5``). The
    density is now built and differentiated in float64 (and the default dtype restored). Such
    a fit, minibatches without the importance correction on more latent sites than ``pi``, is
    warned of: its lam was still 1.5 posterior sd off there."""
    from scai.inference import svi

    built: list[torch.dtype] = []
    real = svi.MarginalDensity

    def recording(*args, **kwargs):
        built.append(torch.get_default_dtype())
        return real(*args, **kwargs)

    monkeypatch.setattr(svi, "MarginalDensity", recording)
    noisy = Hypothesis().with_(rationality_scale=0.5)
    options = {"subsample_size": 20, "init": "median", "correction": None, "max_steps": 100}
    with pytest.warns(svi.MinibatchWarning, match="latent lam"):
        fit_svi(group(60), noisy, seed=0, **options)
    assert built and set(built) == {torch.float64}
    assert torch.get_default_dtype() == torch.float32


def test_the_guide_started_at_laplace_keeps_to_the_exact_posterior():
    """Started at the Laplace approximation, 400 full-batch steps leave the guide's mean of
    ``log lam`` within 0.4 posterior sd of the exact engine's posterior mean. This posterior is
    skewed: its mean 2.40 (sd 0.22) sits 0.50 sd above the Laplace mode 2.29 (Laplace sd
    0.16). The guide ends 0.24, 0.12, 0.02 and 0.01 sd from the exact mean (seeds 0-3); held at
    the mode by a biased gradient, as before the offers' normaliser was exact in float32
    (31d2105: 0.48 sd, as the mode), it fails. (The test asked the guide to stay within 0.2
    Laplace sd of the mode: that held only on that bias; with the normaliser exact, and in
    float64 either way, the guide's mean is 0.98 Laplace sd above the mode. It does not tell
    clipped gradients from unclipped, nor did seeds 0-4 of this model: ``svi.GRADIENT_CLIP``;
    ``tests/test_svi_clipping.py`` does, on a toy posterior where they differ.)"""
    noisy = Hypothesis().with_(rationality_scale=0.5)
    sim = simulate(noisy, policy=NORM, users=3000, rounds=3000, epochs=2, seed=0)
    data = GroupData.from_table(sim.interactions)
    exact = fit_exact(data, noisy, seed=0).flat_draws("lam")[:, 0].double().log()
    options = {"init": "laplace", "correction": None, "min_steps": 400, "max_steps": 400}
    post = fit_svi(data, noisy, seed=0, **options)
    guide_mean = float(post.flat_draws("lam")[:, 0].double().log().mean())
    mean, sd = float(exact.mean()), float(exact.std())
    assert abs(guide_mean - mean) < 0.4 * sd, (guide_mean, mean, sd)


def test_full_batch_svi_without_the_correction_is_warned_of_beyond_pi():
    """``correction=None`` on every user (no minibatches) kept the mean-field guide's draws
    without a word where more than ``pi`` is latent: a review found a currency shift's 90%
    interval 13x too narrow, the true value outside it. Now an ``UncorrectedWarning``; a fit
    of ``pi`` alone, or with the correction, is quiet."""
    import warnings

    from scai.inference.svi import ConvergenceWarning, UncorrectedWarning

    sim = simulate(get_hypothesis("pooled"), policy=NORM, users=4, rounds=4, epochs=1, seed=2)
    data = GroupData.from_table(sim.interactions)
    options = {"max_steps": 20, "num_draws": 20, "init": "median"}
    with pytest.warns(UncorrectedWarning, match=r"correction=None with latent .*shift"):
        fit_svi(data, get_hypothesis("pooled"), correction=None, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncorrectedWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit_svi(data, Hypothesis(), correction=None, **options)
        fit_svi(data, get_hypothesis("pooled"), proposal_draws=200, **options)
