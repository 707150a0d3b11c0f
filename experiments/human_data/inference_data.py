"""A responder fit as ArviZ data, through the one converter (:mod:`scai.inference.arviz_schema`).

Subjects are the schema's ``user`` dimension (the same group names as the social-contract
model's files):

* ``posterior``: the role-level sites ``(chain, draw, role[, norm])`` (``pi``, ``envy_mu``,
  ``envy_sigma``, ``lam``, ``lam_spread``, ``lapse``, ``inattentive``), each user's drawn
  ``state (chain, draw, user)`` (its norm or envy bin, an index into ``user_posterior``'s
  ``state`` coordinate) and, for inequity aversion, its ``envy (chain, draw, user)``;
* ``sample_stats``: NUTS's ``diverging, step_size, tree_depth, n_steps, energy, lp``;
* ``log_likelihood``: ``rejections (chain, draw, user)``: a user's decisions with its state
  summed out (PSIS-LOO leaves one user out);
* ``posterior_predictive``, over every posterior draw: the decisions of a new subject of the
  user's role in the user's cells, its state drawn from the role's distribution given the
  draw (the predictive ``log_likelihood`` scores, so that ``az.loo_pit`` checks a
  leave-one-subject-out predictive), as ``rejections (chain, draw, user)`` (its number of
  rejections: the observation ``az.loo_pit`` checks) and ``cell_rejections (chain, draw,
  user, cell)``; (``rejection_by_offer.csv`` replicates the same subjects instead, each from
  its posterior state);
* ``observed_data``: ``rejections (user)`` and ``cell_rejections (user, cell)``;
* ``constant_data``: ``user_role (user)``, ``trials (user, cell)`` (decisions per cell),
  ``cell_pot`` and ``cell_offer (cell)``;
* ``user_posterior``: ``state_prob (user, state)``, each user's posterior over norms (or envy
  bins) and ``inattentive``, Rao-Blackwellised;
* attributes: :func:`~scai.inference.arviz_schema.provenance` (engine ``nuts``, the input
  table's SHA-256, settings and diagnostics as JSON), the hypothesis and its TOML.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import tomli_w
import xarray as xr

from scai.experiments.human_data.fitting import ResponderFit
from scai.inference.arviz_io import data_sha256
from scai.inference.arviz_schema import InferenceParts, build_inference_data, provenance
from scai.models.responders.states import norm_of_state, norm_probabilities, norm_state_names

DRAWS = (
    "NUTS Markov chains on the responder marginal model (r_hat and ESS apply); each user's "
    "state drawn per draw from its exact conditional posterior; the posterior predictive "
    "replicates a new subject of the user's role in its cells, its state drawn from the role"
)


def responder_parts(fit: ResponderFit, table: pd.DataFrame) -> InferenceParts:
    """The fit as :class:`~scai.inference.arviz_schema.InferenceParts` (module docstring);
    ``table`` is the interaction table it was fitted to (hashed into the provenance)."""
    data = fit.data
    dims, coords = fit.role_dims()
    states = norm_state_names(fit.spec)
    coords.update(user=list(data.subjects), cell=np.arange(len(data.offers)), state=states)
    per_user, per_cell = ["user"], ["user", "cell"]
    dims.update(
        state=per_user,
        envy=per_user,
        rejections=per_user,
        cell_rejections=per_cell,
        user_role=per_user,
        trials=per_cell,
        cell_pot=["cell"],
        cell_offer=["cell"],
    )
    posterior = dict(fit.draws)
    posterior["state"] = norm_of_state(fit.spec, fit.subjects["state"]).astype(np.int64)
    if "envy" in fit.subjects:
        posterior["envy"] = fit.subjects["envy"]
    replicated = fit.subjects["predictive"].astype(np.int32)  # [chains, draws, S, C]
    observed = data.n_reject.numpy().astype(np.int32)
    user_group = xr.Dataset(
        {"state_prob": (("user", "state"), norm_probabilities(fit.spec, fit.state_prob))},
        coords={"user": coords["user"], "state": states},
    )
    attrs = provenance(
        seed=fit.settings.seed,
        engine="nuts",
        draws=DRAWS,
        data_sha256=data_sha256(table.reset_index(drop=True)),
        settings=fit.settings.to_dict(),
        diagnostics=fit.diagnostics,
    )
    attrs.update(
        scai_experiment="human-data",
        hypothesis=fit.spec.name,
        model=fit.spec.kind,
        hypothesis_toml=tomli_w.dumps(fit.spec.to_dict()),
    )
    return InferenceParts(
        posterior=posterior,
        log_likelihood={"rejections": fit.subjects["loglik"]},
        posterior_predictive={"rejections": replicated.sum(-1), "cell_rejections": replicated},
        observed_data={"rejections": observed.sum(-1), "cell_rejections": observed},
        constant_data={
            "user_role": np.array(data.subject_roles(), dtype=str),
            "trials": data.n_trials.numpy().astype(np.int32),
            "cell_pot": data.pots.numpy(),
            "cell_offer": data.offers.numpy(),
        },
        sample_stats=dict(fit.stats),
        dims=dims,
        coords=coords,
        attrs=attrs,
        extra_groups={"user_posterior": user_group},
    )


def responder_inference_data(fit: ResponderFit, table: pd.DataFrame):
    """The fit's ``arviz.InferenceData`` (:func:`responder_parts`, checked against the
    schema by :func:`~scai.inference.arviz_schema.build_inference_data`)."""
    return build_inference_data(responder_parts(fit, table))
