"""After sampling: each subject's latent state per posterior draw, and its replicated decisions.

For draws ``theta_d`` of the role-level sites, a subject's state posterior is exact:
``P(m | theta_d, y_s) = softmax_m J[d, s, m]``
(:func:`scai.models.responders.states.subject_joint`).
:func:`subject_posterior` draws each subject's state from it per draw and, from that state, the
subject's decisions again: the posterior predictive of the same subjects. The decisions given
the states are drawn by :func:`simulate_rejections`, the one simulator of the responder models
(:mod:`scai.models.responders.simulate` draws synthetic data with it, states from the prior).
"""

from __future__ import annotations

import torch

from scai.models.responders.data import DTYPE, ResponderData
from scai.models.responders.decision import envy_grid, envy_log_weights
from scai.models.responders.specs import InequitySpec, Spec
from scai.models.responders.states import norm_of_state, state_tables, subject_joint


def subject_posterior(
    spec: Spec,
    data: ResponderData,
    params: dict[str, torch.Tensor],
    generator: torch.Generator,
    chunk: int = 64,
    new_subjects: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Per-subject results for draws ``params`` (each ``[D, R, ...]``; see
    :func:`~scai.models.responders.states.role_params`):

    * ``loglik [D, S]``: ``log p(y_s | theta_d)``, the subject's decisions with its state
      summed out (for PSIS-LOO: leave one subject out);
    * ``state_prob [S, M]``: ``P(state m | y_s)``, Rao-Blackwellised (averaged over draws);
    * ``state [D, S]``: a draw of each subject's state from ``P(m | theta_d, y_s)``;
    * ``envy [D, S]`` (inequity only): a draw of each subject's envy ``alpha_s`` (its bin's
      midpoint);
    * ``replicated [D, S, C]``: replicated rejections ``~ Binomial(n_trials[s, c],
      P(reject | state[d, s], theta_d))`` (:func:`simulate_rejections`): the same subjects;
    * with ``new_subjects`` (a generator of its own, so that the draws above are the same
      with or without it), ``predictive [D, S, C]``: rejections of a new subject of each
      subject's role in its cells, its state drawn from ``P(m | role, theta_d)``: the
      predictive that ``loglik`` scores (``az.loo_pit`` checks it against the observations;
      the same subjects' replicates would use each subject's decisions twice).

    Computed per distinct subject pattern, then spread to the subjects."""
    patterns, _, inverse = data.compressed
    D = next(iter(params.values())).shape[0]
    out: dict[str, list[torch.Tensor]] = {"loglik": [], "state": [], "replicated": []}
    prob_sum = None
    for start in range(0, D, chunk):
        part = {k: v[start : start + chunk] for k, v in params.items()}
        log_prior, log_rej, _ = state_tables(spec, patterns, part)
        joint = subject_joint(spec, patterns, part)[:, inverse]  # [d, S, M]
        out["loglik"].append(torch.logsumexp(joint, -1))
        post = torch.softmax(joint, -1)
        prob_sum = post.sum(0) if prob_sum is None else prob_sum + post.sum(0)
        state = _draw_states(post, generator)
        out["state"].append(state)
        if isinstance(spec, InequitySpec):
            out.setdefault("envy", []).append(_envy_of(spec, data, part, state, generator))
        out["replicated"].append(
            simulate_rejections(log_rej, data.role_index, state, data.n_trials, generator)
        )
        if new_subjects is not None:
            fresh = _draw_states(log_prior[:, data.role_index].softmax(-1), new_subjects)
            out.setdefault("predictive", []).append(
                simulate_rejections(log_rej, data.role_index, fresh, data.n_trials, new_subjects)
            )
    result = {k: torch.cat(v) for k, v in out.items()}
    result["state_prob"] = prob_sum / D
    return result


def _draw_states(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``[d, S]``: one state per subject and draw from ``probs [d, S, M]``."""
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])


def _envy_of(
    spec: InequitySpec,
    data: ResponderData,
    params: dict[str, torch.Tensor],
    state: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """``[d, S]``: each subject's envy, its state's bin midpoint. An inattentive subject's
    envy is not informed by its decisions, so it is drawn from the population's
    ``P(bin | role)``."""
    G = int(spec.envy_bins)
    bins = torch.as_tensor(norm_of_state(spec, state.numpy()))
    lazy = bins >= G
    if lazy.any():
        w = envy_log_weights(params["envy_mu"], params["envy_sigma"], spec)  # [d, R, G]
        w_s = torch.softmax(w[:, data.role_index], -1)  # [d, S, G]
        prior_bin = torch.multinomial(w_s.reshape(-1, G), 1, generator=generator)
        bins = torch.where(lazy, prior_bin.reshape(state.shape), bins)
    return torch.exp(envy_grid(spec)[0])[bins]


def simulate_rejections(
    log_rej: torch.Tensor,
    role_index: torch.Tensor,
    state: torch.Tensor,
    counts: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """Rejections ``[d, S, C]`` of subjects in states ``state [d, S]``: ``Binomial(counts[s, c],
    P(reject | state, theta_d))`` in every cell ``c`` (``counts [S, C]``; see
    :func:`rejection_probabilities`)."""
    probs = rejection_probabilities(log_rej, role_index, state)
    return draw_binomial(counts.expand(state.shape[0], -1, -1), probs, generator)


def rejection_probabilities(
    log_rej: torch.Tensor, role_index: torch.Tensor, state: torch.Tensor
) -> torch.Tensor:
    """``P(reject | state[d, s], theta_d)`` in every cell, ``[d, S, C]``, from the states'
    decision log-probabilities ``log_rej [d, R, M, C]`` (of
    :func:`~scai.models.responders.states.state_tables`)."""
    d = state.shape[0]
    role = role_index.expand(d, -1)
    return log_rej.exp()[torch.arange(d)[:, None], role, state]


def draw_binomial(
    counts: torch.Tensor, probs: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """``Binomial(counts, probs)`` draws with an explicit generator (small counts: a sum of
    Bernoulli draws)."""
    n_max = int(counts.max())
    trials = torch.rand((n_max, *counts.shape), generator=generator, dtype=DTYPE)
    hits = (trials < probs) & (torch.arange(n_max).view(-1, *[1] * counts.dim()) < counts)
    return hits.sum(0).to(DTYPE)
