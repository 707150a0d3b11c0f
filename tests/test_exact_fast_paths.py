"""The exact engine's and the assistant's shortcuts equal the computations they replace: the
clone kernels against the torch reference (:mod:`scai.models.marginal`), grid points that share
their log-likelihoods computed once, and action tables computed once per distinct parameter."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import scai.inference.exact as exact
import scai.inference.exact_bounded as exact_bounded
import scai.inference.exact_joint as exact_joint
from scai.experiments.assistant import assistant_norms
from scai.inference.exact_kernels import (
    clone_policy_probs,
    distinct_users,
    lattice_clone_loglik,
    user_kinds,
)
from scai.inference.grids.simplex import simplex_lattice
from scai.models.distinct import distinct_rows, sorted_distinct_rows
from scai.models.game import get_currency
from scai.models.hypotheses import PRESETS
from scai.models.layout import GroupData
from scai.models.marginal import group_loglik, type_posterior
from scai.models.model import group_tables
from scai.models.policies import rational_tables, utility_tables, with_lapse
from scai.models.prior import GroupPrior
from scai.models.simulate import simulate
from scai.models.underflow import FLOOR


def clone_case(t=5, S=4, U=7, K=4):
    """Log-likelihoods with decided users, clones (identical users) and padding."""
    generator = torch.Generator().manual_seed(3)
    L = torch.randn(t, S, U, K, dtype=torch.float64, generator=generator) * 3
    L[:, :, 0, 0] += 80  # decided at every grid point
    L[:, 1, 2] = L[:, 1, 3]  # clones
    L[:, 2, 4:] = L[:, 2, 3:4]
    mask = torch.ones(S, U, dtype=torch.float64)
    mask[3, 5:] = 0  # padding
    L = L * mask[..., None]
    clone = torch.rand(t, dtype=torch.float64, generator=generator)
    return L, mask, clone, simplex_lattice(K, 60).double()


def test_clone_kernel_equals_the_reference_group_likelihood():
    L, mask, clone, pi = clone_case()
    kernel = lattice_clone_loglik(L, distinct_users(L, mask), pi, clone)  # [t, S, G]
    log_pi = pi.log()[:, None, :]  # [G, 1(S), K]
    for i in range(len(clone)):
        want = group_loglik(log_pi, L[i].unsqueeze(0), mask, clone[i].expand(1, L.shape[1]))
        torch.testing.assert_close(kernel[i], want.T, rtol=0, atol=1e-9)


def test_distinct_rows_group_the_rows_torch_unique_groups():
    """Rows equal as numbers (``-0.0`` and ``0.0`` too, ``-inf`` with ``-inf``) are one row,
    as ``torch.unique(dim=0)`` has them; the first of each and the counts are those of the
    first occurrences."""
    generator = torch.Generator().manual_seed(5)
    rows = torch.randint(0, 3, (400, 5), generator=generator).double() - 1.0
    rows[rows == 0] = -0.0  # the same number, other bytes
    rows[::7, 2] = 0.0
    rows[::11, 1] = -torch.inf
    first, which, counts = distinct_rows(rows)
    _, want_which, want_counts = torch.unique(rows, dim=0, return_inverse=True, return_counts=True)
    # the same partition of the rows, whatever the order of the distinct rows
    assert len(first) == len(want_counts)
    assert torch.equal(want_which[first][which], want_which)
    assert torch.equal(counts, want_counts[want_which[first]])
    assert torch.equal(
        first, torch.tensor([int((want_which == want_which[f]).nonzero()[0]) for f in first])
    )
    assert torch.equal(rows[first][which], rows)


@pytest.mark.parametrize("width", [1, 2, 3])
def test_sorted_distinct_rows_are_torch_uniques(width):
    """The distinct rows in torch's order and every row's position among them, as
    ``torch.unique(dim=0, return_inverse=True)`` gives them: rows equal as numbers (``-0.0``
    and ``0.0``, infinities) are one row."""
    generator = torch.Generator().manual_seed(width)
    for zero in (0.0, -0.0):
        rows = torch.randint(-3, 3, (300, width), generator=generator).double() / 2
        rows[rows == 0] = zero
        rows[::7, 0] = 0.0
        rows[::5, 0] = -torch.inf
        rows[::11, -1] = torch.inf
        unique, which = sorted_distinct_rows(rows)
        want, want_which = torch.unique(rows, dim=0, return_inverse=True)
        assert torch.equal(unique, want) and torch.equal(which, want_which)


def test_clone_policy_probs_equal_the_weighted_type_posterior():
    """Over every grid point (``mass=1``), users worked out once per kind equal each user's
    type posterior summed with the grid's weights, 1e-12."""
    L, mask, clone, pi = clone_case()
    t, S, U, K = L.shape
    kinds = user_kinds(L, mask)
    assert kinds[1, 3] == 2 and kinds[2, 6] == 3 and kinds[3, 6] == 5  # clones, padding
    generator = torch.Generator().manual_seed(4)
    weights = torch.rand(t, S, len(pi), dtype=torch.float64, generator=generator) ** 4
    weights = weights / weights.sum((0, 2), keepdim=True)
    probs, covered, sampled_se = clone_policy_probs(
        weights, L, mask, pi, clone, mass=1.0, max_points=10**6
    )
    assert covered == pytest.approx(1.0, abs=1e-12) and sampled_se == 0.0
    log_pi = pi.log()[:, None, :].expand(-1, S, -1)  # [G, S, K]
    want = torch.zeros(S, U, K, dtype=torch.float64)
    for i in range(t):
        post = type_posterior(log_pi, L[i].unsqueeze(0), mask, clone[i].expand(len(pi), S))
        want += torch.einsum("gs,gsuk->suk", weights[i].T, post)
    torch.testing.assert_close(probs[mask > 0], want[mask > 0], rtol=0, atol=1e-12)


def test_grid_points_with_the_same_likelihood_are_computed_once(float64, monkeypatch):
    """Without tones a stereotype's strength changes no log-likelihood: its grid points share
    one kernel evaluation, and the posterior is the same, bit for bit, as evaluating each."""
    policy = "selfish=0.4,fair=0.3,altruistic=0.3"
    sim = simulate(
        PRESETS["stereotyped"], policy=policy, users=5, rounds=4, epochs=2, sims=3, seed=5
    )
    data = GroupData.from_table(sim.interactions.assign(proposer_tone="", responder_tone=""))
    hyp = PRESETS["real_agents_stereotyped"]
    seen = []
    first_of_each = exact_joint._first_of_each

    def spy(rows):
        first, which = first_of_each(rows)
        seen.append((len(first), len(rows)))
        return first, which

    monkeypatch.setattr(exact_joint, "_first_of_each", spy)
    # (the coarse grids: the kernels' sharing is the same on a zoomed one, and the slow path
    # below evaluates every one of its thousands of points)
    monkeypatch.setattr(exact_bounded, "MAX_BOUNDED_ZOOMS", 0)
    fast = exact.fit_exact(data, hyp, num_draws=200)
    assert seen and seen[-1][0] * exact_bounded.BOUNDED_POINTS["strength"] == seen[-1][1]
    monkeypatch.setattr(exact_joint, "_first_of_each", lambda rows: (torch.arange(len(rows)),) * 2)
    slow = exact.fit_exact(data, hyp, num_draws=200)
    assert torch.equal(fast.policy_probs, slow.policy_probs)
    assert torch.equal(fast.pi_mean_exact, slow.pi_mean_exact)
    for name, value in slow.draws.items():
        assert torch.equal(fast.draws[name], value), name


def test_lapse_applied_to_shared_rational_tables_is_the_same():
    hyp = PRESETS["real_agents"]
    from scai.models.policies import policy_parameters, responder_parameters

    w, alpha, beta = policy_parameters(hyp.policies)
    utilities = utility_tables(
        w, alpha, beta, torch.tensor([7, 12]), torch.zeros(3, 1), responder_parameters(hyp.policies)
    )
    lam, eps = torch.full((3,), 1.5), torch.tensor([0.01, 0.2, 0.05])
    once = rational_tables(utilities, lam)
    shared = with_lapse(once, eps)
    direct = rational_tables(utilities, lam, eps)
    assert torch.equal(shared.offer_logp, direct.offer_logp)
    assert torch.equal(shared.accept_logit, direct.accept_logit)


def test_prior_norms_equal_every_draws_own_tables():
    """The assistant's acting distribution from the prior (one rationality and shift) equals
    averaging each draw's own tables, bit for bit; it acts by the norm without the users'
    lapses (the prior's 300 continuous lapses change nothing)."""
    hyp = PRESETS["real_agents"]
    pots, currencies = [9, 14], ["dollars", "apples"]
    norms = assistant_norms(
        None,
        hyp,
        pots,
        currencies,
        np.random.default_rng(0),
        acting="predictive",
        n_prior_draws=300,
        prior_generator=torch.Generator().manual_seed(2),
    )
    essential = torch.tensor([[float(get_currency(c).essential)] for c in currencies])
    draws = GroupPrior(hyp).sample((300, 2), essential, torch.Generator().manual_seed(2))
    for s, pot in enumerate(pots):
        t = group_tables(
            hyp,
            torch.tensor([pot]),
            draws["lam"][:, s].reshape(-1, 1),
            draws["shift"][:, s, 0].reshape(-1, 1, 1),
        )
        ws = draws["pi"][:, s].unsqueeze(-1)
        offer = (ws * t.offer_logp[:, 0, 0, :, 0].exp()).sum(1).mean(0).double().numpy()
        accept = (ws * t.accept_prob()[:, 0, 0, :, 0]).sum(1).mean(0).double().numpy()
        assert np.array_equal(norms.offer_probs[s], offer)
        assert np.array_equal(norms.accept_probs[s], accept)
        # not the users' actions, slips included: those offer more at random
        slips = with_lapse(t, draws["lapse"][:, s].reshape(-1, 1, 1, 1))
        assert not np.allclose(
            norms.offer_probs[s],
            (ws * slips.offer_logp[:, 0, 0, :, 0].exp()).sum(1).mean(0).double().numpy(),
        )


def test_norms_from_the_table_cache_equal_norms_without_it():
    """Posterior sampling with a table cache kept across calls (the protocol's epochs) acts
    exactly as without one: the same types, offer and accept probabilities, bit for bit, and
    the second call finds its tables in the cache."""
    from scai.inference.fit import fit

    sim = simulate(PRESETS["neutral"], policy="fair", users=4, rounds=4, epochs=1, sims=3, seed=6)
    posterior = fit(sim.interactions, "neutral", seed=1)
    currencies = [posterior.data.currencies[0]] * 3
    cache: dict = {}
    for pots in ([10, 25, 10], [25, 10, 40]):
        plain = assistant_norms(
            posterior, posterior.hypothesis, pots, currencies, np.random.default_rng(3)
        )
        cached = assistant_norms(
            posterior,
            posterior.hypothesis,
            pots,
            currencies,
            np.random.default_rng(3),
            table_cache=cache,
        )
        assert cached.types == plain.types
        for got, want in zip(
            cached.offer_probs + cached.accept_probs,
            plain.offer_probs + plain.accept_probs,
            strict=True,
        ):
            assert np.array_equal(got, want)
    # ``neutral`` fixes lam and the shift: one entry per pot, reused across the two calls
    assert sorted(key[0] for key in cache) == [10, 25, 40]


def test_prefix_groups_equal_the_stacked_prefix_tables():
    """``GroupData.prefixes`` gives the tensors ``from_table`` builds from every simulation's
    prefix tables stacked (what the learning curve used to build), field by field; ``row``
    still points into the original table."""
    table = simulate(
        PRESETS["stereotyped"], policy="fair", users=5, rounds=6, epochs=2, sims=3, seed=4
    ).interactions
    users = {str(s): [f"u{i}" for i in range(5)] for s in table["sim"].unique()}
    parts, stacked_users = [], {}
    for sim, rows in table.groupby("sim", sort=False):
        for n in range(1, len(rows) + 1):
            parts.append(rows.iloc[:n].assign(sim=f"{sim}#{n}"))
            stacked_users[f"{sim}#{n}"] = users[str(sim)]
    stacked = pd.concat(parts)
    expected = GroupData.from_table(stacked.reset_index(drop=True), users=stacked_users)
    original = torch.tensor(stacked.index.to_numpy())  # stacked row -> original row
    expected.row = torch.where(expected.row >= 0, original[expected.row.clamp_min(0)], -1)
    got = GroupData.from_table(table, users=users).prefixes()
    assert got.sim_ids == expected.sim_ids and got.user_ids == expected.user_ids
    assert got.currencies == expected.currencies
    for name, value in vars(expected).items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(getattr(got, name), value), name


def fitted_group_counts(monkeypatch) -> list[int]:
    """The number of groups of each :func:`fit_exact` call the test makes, recorded."""
    calls: list[int] = []
    fit = exact.fit_exact

    def recording(data, *args, **kwargs):
        calls.append(data.shape[0])
        return fit(data, *args, **kwargs)

    monkeypatch.setattr(exact, "fit_exact", recording)
    return calls


LATENT_LAM = PRESETS["stereotyped"].with_(rationality_scale=0.3)


@pytest.mark.parametrize("hyp", [PRESETS["stereotyped"], PRESETS["neutral"], LATENT_LAM])
def test_policy_probabilities_equal_every_group_fitted(hyp, monkeypatch):
    """A learning curve's prefix groups, one fit per kind of group: every real user's type
    probabilities equal those of the fit of every group (to float32's last bit), padding rows
    are 0, and with nothing latent but ``pi`` far fewer groups are fitted (a latent scalar:
    every group)."""
    # a mixed group: groups of one kind must agree on their decided users' types too
    mixed = "selfish=0.4,fair=0.3,altruistic=0.3"
    table = simulate(hyp, policy=mixed, users=6, rounds=6, epochs=3, sims=3, seed=8)
    users = {str(s): [f"u{i}" for i in range(7)] for s in range(3)}  # u6 never plays
    data = GroupData.from_table(table.interactions, users=users).prefixes()
    if hyp is LATENT_LAM:  # every group has a grid of its own: a few of them will do
        data = data.sims_subset(torch.arange(0, data.shape[0], 9))
    want = exact.fit_exact(data, hyp, num_draws=1).policy_probs
    calls = fitted_group_counts(monkeypatch)
    got = exact.policy_probabilities(data, hyp)
    real = data.user_mask
    torch.testing.assert_close(got[real], want[real], rtol=0, atol=2e-7)
    assert torch.equal(got[~real], torch.zeros_like(got[~real]))
    if hyp is LATENT_LAM:
        assert calls[0] == data.shape[0]  # (then one call per group)
    else:
        assert len(calls) == 1 and calls[0] < data.shape[0] / 2, calls


def test_policy_probabilities_are_undefined_where_the_fits_are():
    """A tone reader that never reports ``rude`` makes a rude message impossible under every
    type: the fit of each group with such a user has NaN probabilities for all its users,
    decided ones too, and so does the one fit per kind."""
    reader = [[1, 0, 0, 0], [0, 1, 0, 0], [0.5, 0, 0, 0.5], [0, 0, 0, 1]]
    hyp = PRESETS["stereotyped"].with_(reader_confusion=reader)
    mixed = "selfish=0.4,fair=0.3,altruistic=0.3"
    table = simulate(PRESETS["stereotyped"], policy=mixed, users=5, rounds=5, sims=3, seed=2)
    data = GroupData.from_table(table.interactions).prefixes()
    want = exact.fit_exact(data, hyp, num_draws=1).policy_probs
    got = exact.policy_probabilities(data, hyp)
    real = data.user_mask
    assert want[real].isnan().any() and not want[real].isnan().all()  # the case in question
    torch.testing.assert_close(got[real], want[real], rtol=0, atol=2e-7, equal_nan=True)


def test_policy_probabilities_fit_every_group_where_the_lattice_zooms(monkeypatch):
    """Two groups of 400 selfish users whose offers decide every type: one is fitted as the
    kind of both, the engine zooms its lattice onto it, and then both are fitted; the answer
    is the fit's."""
    hyp = PRESETS["neutral"]
    table = simulate(hyp, policy="selfish", users=400, rounds=800, epochs=1, sims=2, seed=1)
    data = GroupData.from_table(table.interactions)
    want = exact.fit_exact(data, hyp, num_draws=1)
    assert "simplex_zooms" in want.diagnostics  # the case this test is about
    calls = fitted_group_counts(monkeypatch)
    got = exact.policy_probabilities(data, hyp)
    assert calls == [1, 2]
    assert torch.equal(got, want.policy_probs * data.user_mask.unsqueeze(-1))


def test_sims_subset_keeps_the_chosen_groups_in_order():
    table = simulate(PRESETS["neutral"], policy="fair", users=4, rounds=4, sims=3, seed=2)
    data = GroupData.from_table(table.interactions)
    part = data.sims_subset(torch.tensor([2, 0]))
    assert part.sim_ids == [data.sim_ids[2], data.sim_ids[0]]
    assert part.user_ids == [data.user_ids[2], data.user_ids[0]]
    assert torch.equal(part.pots, data.pots)
    for name, value in vars(data).items():
        if isinstance(value, torch.Tensor) and value.dim() >= 2:
            assert torch.equal(getattr(part, name), value[[2, 0]]), name


def test_normalise_equals_torch_logsumexp_over_each_simulation():
    """The exact engine's evidence and weights without the transposed copy: the same bits as
    ``torch.logsumexp`` over each simulation's ``[T * G]`` values, ``-inf`` entries and a
    simulation with no mass included."""
    generator = torch.Generator().manual_seed(7)
    # (70, 3, 2926): torch's long-row sums; one grid point (T = 1): the rows at once, in
    # blocks (600 > ROWS_AT_ONCE), or row by row when a row is longer than one chunk
    shapes = [(1, 6, 50), (9, 4, 31), (70, 3, 2926), (1, 600, 2926), (1, 3, 40_000)]
    for shape in shapes:
        log_joint = torch.randn(*shape, dtype=torch.float64, generator=generator) * 40
        log_joint[..., :3] = -torch.inf
        log_joint[:, -1] = -torch.inf  # no mass at all: -inf evidence, as torch gives
        S = shape[1]
        want = torch.logsumexp(log_joint.transpose(0, 1).reshape(S, -1), -1)
        log_evidence, weights = exact_joint.normalise(log_joint)
        assert torch.equal(log_evidence, want)
        want_weights = (log_joint - want.reshape(1, S, 1)).exp()  # NaN where no mass
        torch.testing.assert_close(weights, want_weights, rtol=0, atol=0, equal_nan=True)


def test_normalise_far_below_the_mode():
    """Log joints spread thousands of nats below their mode (the slow path of torch's ``exp``
    that :mod:`scai.models.underflow` avoids): the evidence is torch's to the bit, the weights
    torch's where they exceed ``exp(FLOOR)`` and 0 below."""
    generator = torch.Generator().manual_seed(8)
    for shape in [(1, 600, 2926), (9, 4, 311), (1, 3, 40_000)]:
        log_joint = torch.rand(*shape, dtype=torch.float64, generator=generator) * -3000
        log_joint[:, 0, :5] = 0.0  # a mode
        log_joint[:, -1] = -torch.inf  # no mass at all
        S = shape[1]
        want = torch.logsumexp(log_joint.transpose(0, 1).reshape(S, -1), -1)
        log_evidence, weights = exact_joint.normalise(log_joint)
        assert torch.equal(log_evidence, want)
        want_weights = (log_joint - want.reshape(1, S, 1)).exp()
        far = want_weights <= math.exp(FLOOR[torch.float64])
        assert far.float().mean() > 0.5
        assert torch.equal(weights[far], torch.zeros_like(weights[far]))
        assert torch.equal(
            weights[~far & ~want_weights.isnan()], want_weights[~far & ~want_weights.isnan()]
        )


def test_scalar_marginal_in_blocks_equals_one_logsumexp():
    """The scalars' marginal a few grid points at a time: the same bits as one
    ``logsumexp((1, 3))`` over the whole ``[T, B, S, G]`` log joint (blocks of one and of
    several grid points, ``-inf`` entries and a point with no mass included)."""
    generator = torch.Generator().manual_seed(11)
    log_joint = torch.randn(37, 2, 5, 2926, dtype=torch.float64, generator=generator) * 30
    log_joint[..., :4] = -torch.inf
    log_joint[3] = -torch.inf
    want = log_joint.logsumexp((1, 3))
    for block in (1, 2926 * 10 * 3, 2**20):
        assert torch.equal(exact_joint.log_marginal(log_joint, block), want)


def test_cumulative_weights_equal_the_transposed_cumsum():
    """The draws' cumulative weights, one scan per simulation: the same bits as the cumsum of
    the transposed ``[S, T * G]`` copy."""
    generator = torch.Generator().manual_seed(13)
    for T, S in [(41, 6), (1, 300)]:  # one grid point: every row's scan at once
        weights = torch.rand(T, S, 2926, dtype=torch.float64, generator=generator) ** 8
        weights[:, 2] = 0.0
        want = weights.permute(1, 0, 2).reshape(S, -1).cumsum(-1)
        assert torch.equal(exact_joint.cumulative_weights(weights), want)


@pytest.mark.parametrize("rows", [1, 7, 256])
def test_lattice_kernels_in_row_blocks_equal_one_block(rows, monkeypatch):
    """The lattice kernels' ``[rows, lattice]`` products formed a block of undecided rows at a
    time give what one block of all of them gives (blocks of one row, of a few, and the
    default; hundreds of undecided rows, decided users and padding included)."""
    import scai.inference.exact_kernels as kernels

    L, mask, _, pi = clone_case(t=3, S=40, U=9, K=3)
    weights = torch.rand(3, 40, pi.shape[0], dtype=torch.float64)
    weights /= weights.sum((0, 2), keepdim=True)
    monkeypatch.setattr(kernels, "ROWS_PER_BLOCK", 10**9)
    group, probs = (
        kernels.lattice_group_loglik(L, mask, pi),
        kernels.lattice_policy_probs(weights, L, pi),
    )
    monkeypatch.setattr(kernels, "ROWS_PER_BLOCK", rows)
    is_decided = kernels.decided_users(L, pi)[0]
    assert int((~is_decided & mask.bool()).sum()) > 3 * rows  # several blocks, and some decided
    assert bool(is_decided.any())
    torch.testing.assert_close(kernels.lattice_group_loglik(L, mask, pi), group, rtol=1e-13, atol=0)
    torch.testing.assert_close(
        kernels.lattice_policy_probs(weights, L, pi), probs, rtol=1e-12, atol=1e-15
    )


def test_repeated_rows_are_scored_once(monkeypatch):
    """A learning curve's prefix groups repeat most undecided users' rows (a user's data stay
    the same from one of its actions to the next): the group log-likelihood forms each distinct
    row's terms once and adds them where each copy sits, in order, giving what scoring every
    row gives; without repeats (or beyond the budget) every row is scored."""
    import scai.inference.exact_kernels as kernels

    hyp = PRESETS["stereotyped"].with_(rationality=0.5)  # users the data decide slowly
    table = simulate(hyp, policy="altruistic", users=10, rounds=8, epochs=3, sims=4, seed=3)
    users = {str(s): [f"u{i}" for i in range(10)] for s in range(4)}
    data = GroupData.from_table(table.interactions, users=users).prefixes()
    L = exact.fixed_action_loglik(data, hyp) + exact.tone_loglik(data, hyp).double()
    mask = data.user_mask.double()
    pi = simplex_lattice(3, 2926).double()
    scored = []
    terms = kernels._user_terms
    monkeypatch.setattr(kernels, "_user_terms", lambda e, *a: scored.append(len(e)) or terms(e, *a))
    once = kernels.lattice_group_loglik(L, mask, pi)
    undecided = int((~kernels.decided_users(L, pi)[0] & mask.bool()).sum())
    assert sum(scored) < undecided / 2, (sum(scored), undecided)
    scored.clear()
    monkeypatch.setattr(kernels, "REPEATED_TERMS_BUDGET", 0)
    every = kernels.lattice_group_loglik(L, mask, pi)
    assert sum(scored) == undecided
    torch.testing.assert_close(once, every, rtol=1e-13, atol=0)


def test_the_summary_gives_the_lattices_mean_of_pi_in_each_simulations_rows():
    """``summary()`` of an exact fit of several simulations: ``pi``'s mean in each row is that
    simulation's lattice sum (``pi_mean``), set in the row as it is made; every other number is
    the draws' own."""
    from scai.inference.exact import fit_exact

    hypothesis = PRESETS["neutral"].with_(rationality_scale=0.5)  # lam latent
    sim = simulate(hypothesis, policy="selfish=0.6,fair=0.4", users=5, sims=3, seed=4)
    post = fit_exact(GroupData.from_table(sim.interactions), hypothesis, seed=1)
    table = post.summary()
    exact_mean = post.pi_mean()
    for s, sim_id in enumerate(post.data.sim_ids):
        rows = table[table["sim"] == sim_id].set_index("parameter")
        for k, name in enumerate(post.policy_names):
            assert rows.loc[f"pi[{name}]", "mean"] == float(exact_mean[s, k])
            draws = post.flat_draws("pi")[:, s, k].double()
            assert rows.loc[f"pi[{name}]", "q95"] == float(draws.quantile(0.95))
        lam = post.flat_draws("lam")[:, s].double()
        assert rows.loc["lam", "mean"] == float(lam.mean())
    assert list(dict.fromkeys(table["sim"])) == list(post.data.sim_ids)
