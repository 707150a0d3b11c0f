"""ArviZ conversion and NetCDF storage of a :class:`~scai.inference.posterior.Posterior`.

ArviZ 0.23's ``from_pyro`` drops the log-likelihood of enumerated models, so the data set is
built by hand with ``az.from_dict``:

* ``posterior``: ``pi (chain, draw, sim, policy)`` and, where latent, ``lam (chain, draw, sim)``,
  ``shift_shared (chain, draw, sim)``, ``shift (chain, draw, sim, currency)``;
* ``sample_stats``: the engine's per-draw statistics (MCMC: ``diverging``, ``step_size``,
  ``tree_depth``, ``energy``; SVI/exact: ``lp``, the log joint density of the draw);
* ``log_likelihood``: ``obs (chain, draw, user)``, each user's log-likelihood with its policy
  and manner summed out (for ``az.loo`` and ``az.compare``);
* ``observed_data``: the interaction table, one variable per column, dim ``interaction``;
* ``posterior_predictive``: replicated ``offer`` and ``accepted`` per interaction for up to
  ``max_predictive_draws`` draws per chain;
* ``user_posterior``: ``policy_prob (user, policy)`` and ``manner_prob (user, manner)``
  (and, for the exact engine, the grid's ``pi_mean (sim, policy)``).

Users are labelled ``sim:user``. Attributes record the engine, seed, hypothesis (as TOML) and
package versions, so :func:`load_posterior` can rebuild the :class:`Posterior`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch

from scai.models.data import INTERACTION_COLUMNS, write_atomic
from scai.models.hypotheses import Hypothesis
from scai.models.language import MANNERS
from scai.models.layout import GroupData

SCHEMA_VERSION = "1"


def _user_labels(data: GroupData) -> list[str]:
    return [f"{sim}:{user}" for s, sim in enumerate(data.sim_ids) for user in data.user_ids[s]]


def _real_users(value: torch.Tensor, data: GroupData, trailing: int) -> np.ndarray:
    """Select the real users from ``[..., S, U, *trailing]``."""
    s_idx, u_idx = torch.nonzero(data.user_mask, as_tuple=True)
    lead = value.dim() - 2 - trailing
    index = (slice(None),) * lead + (s_idx, u_idx)
    return value[index].detach().double().numpy()


def _replicate(posterior, draws_per_chain: int) -> dict[str, np.ndarray]:
    """Posterior-predictive offers and decisions for every interaction of the table."""
    from scai.models.marginal import type_posterior
    from scai.models.model import group_tables

    data, hyp = posterior.data, posterior.hypothesis
    C, D = posterior.n_chains, posterior.n_draws
    step = max(1, D // draws_per_chain)
    keep = torch.arange(0, D, step)[:draws_per_chain]
    flat_keep = (torch.arange(C).unsqueeze(-1) * D + keep).flatten()
    generator = torch.Generator().manual_seed(posterior.seed + 1)
    pi = posterior.flat_draws("pi")[flat_keep]
    lam = posterior.lam()[flat_keep]
    shift = posterior.shifts_in_data()[flat_keep]
    loglik = posterior.user_loglik()[flat_keep]
    z_probs = type_posterior(pi.clamp_min(1e-300).log(), loglik)  # [d, S, U, K]
    z = _categorical(z_probs, generator)  # [d, S, U]
    table = posterior.table.reset_index(drop=True)
    n = len(table)
    sim_of = {s: i for i, s in enumerate(data.sim_ids)}
    user_of = [{u: j for j, u in enumerate(ids)} for ids in data.user_ids]
    cur_of = {c: i for i, c in enumerate(data.currencies)}
    s_idx = torch.tensor([sim_of[str(s)] for s in table["sim"]])
    c_idx = torch.tensor([cur_of[c] for c in table["currency"]])
    pot = torch.as_tensor(table["pot"].to_numpy())
    # -1 marks a participant that is not a user (unknown proposer, the assistant): its action
    # is not replicated, the observed one is kept.
    resp = torch.tensor(
        [
            user_of[s].get(str(r), -1)
            for s, r in zip(s_idx.tolist(), table["responder"], strict=True)
        ]
    )
    prop = torch.tensor(
        [user_of[s].get(str(p), -1) for s, p in zip(s_idx.tolist(), table["proposer"], strict=True)]
    )
    d = pi.shape[0]
    ar = torch.arange(d).unsqueeze(-1)
    zp = z[ar, s_idx, prop.clamp(min=0)]  # [d, n]
    zr = z[ar, s_idx, resp.clamp(min=0)]
    offers = torch.as_tensor(table["offer"].to_numpy()).expand(d, n).clone()
    accept_logit = torch.empty(d, n, dtype=torch.get_default_dtype())
    varies = bool({"lam", "shift", "shift_shared"} & set(posterior.draws))
    # One pot at a time, over the simulations that played it: a table over every pot for
    # every simulation and draw would be mostly unused.
    for p in pot.unique().tolist():
        rows = torch.nonzero(pot == p).squeeze(-1)
        sims = s_idx[rows].unique()
        where = torch.searchsorted(sims, s_idx[rows])  # row -> position in `sims`
        if varies:
            tables = group_tables(hyp, torch.tensor([p]), lam[:, sims], shift[:, sims])
            draw = ar
        else:  # nothing in the tables varies by draw: compute them once
            tables = group_tables(hyp, torch.tensor([p]), lam[:1, sims], shift[:1, sims])
            draw = torch.zeros_like(ar)
        cur = c_idx[rows]
        proposed = prop[rows] >= 0
        if proposed.any():
            logits = tables.offer_logp[draw, where, cur, zp[:, rows], 0]  # [d, rows, O]
            drawn = _categorical(torch.softmax(logits, -1), generator)
            offers[:, rows] = torch.where(proposed, drawn, offers[:, rows])
        accept_logit[:, rows] = tables.accept_logit[
            draw, where, cur, zr[:, rows], 0, offers[:, rows]
        ].to(accept_logit.dtype)
    accepted = torch.bernoulli(torch.sigmoid(accept_logit), generator=generator)
    observed = torch.as_tensor(table["accepted"].to_numpy(), dtype=accepted.dtype)
    accepted = torch.where(resp >= 0, accepted, observed)
    shape = (C, len(keep), n)
    return {
        "offer": offers.reshape(shape).numpy().astype(np.int32),
        "accepted": accepted.reshape(shape).numpy().astype(np.int8),
    }


def _categorical(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Draws from ``Categorical(probs)`` over the last dimension, reproducibly."""
    flat = probs.reshape(-1, probs.shape[-1]).double()
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])


def to_inference_data(posterior, max_predictive_draws: int = 100):
    import arviz as az

    data = posterior.data
    users = _user_labels(data)
    coords = {
        "sim": list(data.sim_ids),
        "policy": list(posterior.policy_names),
        "currency": list(data.currencies),
        "user": users,
        "manner": list(MANNERS),
        "interaction": np.arange(len(posterior.table)),
    }
    dims = {
        "pi": ["sim", "policy"],
        "lam": ["sim"],
        "shift_shared": ["sim"],
        "shift": ["sim", "currency"],
        "obs": ["user"],
        "offer": ["interaction"],
        "accepted": ["interaction"],
    }
    posterior_vars = {k: v.detach().double().numpy() for k, v in posterior.draws.items()}
    log_lik = _real_users(posterior.pointwise_loglik(), data, trailing=0)
    table = posterior.table.reset_index(drop=True)
    observed = {c: table[c].to_numpy() for c in INTERACTION_COLUMNS}
    for c in ("sim", "proposer", "responder", "currency", "proposer_tone", "responder_tone"):
        observed[c] = observed[c].astype(str)
    if "lp" not in posterior.sample_stats:  # computed once, when first asked for
        posterior.sample_stats["lp"] = posterior.log_joint().numpy()
    stats = dict(posterior.sample_stats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_dict(
            posterior=posterior_vars,
            sample_stats=stats or None,
            log_likelihood={"obs": log_lik},
            observed_data=observed,
            posterior_predictive=_replicate(posterior, max_predictive_draws),
            coords=coords,
            dims={**dims, **{c: ["interaction"] for c in INTERACTION_COLUMNS}},
        )
        import xarray as xr

        user_group = xr.Dataset(
            {
                "policy_prob": (("user", "policy"), _real_users(posterior.policy_probs, data, 1)),
                "manner_prob": (("user", "manner"), _real_users(posterior.manner_probs, data, 1)),
            },
            coords={"user": users, "policy": coords["policy"], "manner": coords["manner"]},
        )
        if posterior.pi_mean_exact is not None:
            user_group["pi_mean"] = (("sim", "policy"), posterior.pi_mean_exact.double().numpy())
            user_group = user_group.assign_coords(sim=coords["sim"])
        idata.add_groups({"user_posterior": user_group})
    attrs = _provenance(posterior)
    for group in idata.groups():
        getattr(idata, group).attrs.update(attrs)
    return idata


def _provenance(posterior) -> dict[str, str]:
    import arviz
    import pyro
    import tomli_w

    return {
        "scai_schema": SCHEMA_VERSION,
        "engine": posterior.engine,
        "seed": str(posterior.seed),
        "hypothesis_toml": tomli_w.dumps(posterior.hypothesis.to_dict()),
        "settings": repr(posterior.settings),
        "diagnostics": repr(posterior.diagnostics),
        "sim_ids": "\x1f".join(posterior.data.sim_ids),
        "user_ids": "\x1e".join("\x1f".join(u) for u in posterior.data.user_ids),
        "currencies": "\x1f".join(posterior.data.currencies),
        "torch_version": str(torch.__version__),
        "pyro_version": str(pyro.__version__),
        "arviz_version": str(arviz.__version__),
    }


def save_netcdf(idata, path) -> None:
    """Write an InferenceData to NetCDF (h5netcdf) atomically."""

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata.to_netcdf(tmp, engine="h5netcdf")

    write_atomic(path, write)


def save_posterior(posterior, path) -> None:
    """Write ``posterior.to_arviz()`` to NetCDF atomically (temporary file, then rename)."""
    save_netcdf(posterior.to_arviz(), path)


def load_posterior(path):
    """Rebuild a :class:`Posterior` from a file written by :func:`save_posterior`."""
    import tomllib

    import arviz as az

    from scai.inference.posterior import Posterior

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_netcdf(path, engine="h5netcdf")
    attrs = idata.posterior.attrs
    hypothesis = Hypothesis.from_dict(tomllib.loads(attrs["hypothesis_toml"]))
    obs = idata.observed_data
    table = pd.DataFrame({c: obs[c].values for c in INTERACTION_COLUMNS})
    for c in ("sim", "proposer", "responder", "currency", "proposer_tone", "responder_tone"):
        table[c] = table[c].astype(str)
    sim_ids = attrs["sim_ids"].split("\x1f")
    user_ids = [u.split("\x1f") for u in attrs["user_ids"].split("\x1e")]
    data = GroupData.from_table(
        table,
        users=dict(zip(sim_ids, user_ids, strict=True)),
        currencies=attrs["currencies"].split("\x1f"),
    )
    dtype = torch.get_default_dtype()
    draws = {
        k: torch.as_tensor(idata.posterior[k].values, dtype=dtype)
        for k in ("pi", "lam", "shift_shared", "shift")
        if k in idata.posterior
    }
    S, U, _ = data.shape
    s_idx, u_idx = torch.nonzero(data.user_mask, as_tuple=True)
    user_group = idata["user_posterior"]
    policy = torch.zeros(S, U, len(hypothesis.policies), dtype=dtype)
    policy[s_idx, u_idx] = torch.as_tensor(user_group["policy_prob"].values, dtype=dtype)
    manner = torch.zeros(S, U, len(MANNERS), dtype=dtype)
    manner[s_idx, u_idx] = torch.as_tensor(user_group["manner_prob"].values, dtype=dtype)
    stats = (
        {k: idata.sample_stats[k].values for k in idata.sample_stats.data_vars}
        if "sample_stats" in idata.groups()
        else {}
    )
    import ast

    pi_mean = (
        torch.as_tensor(user_group["pi_mean"].values, dtype=dtype)
        if "pi_mean" in user_group
        else None
    )
    return Posterior(
        engine=attrs["engine"],
        hypothesis=hypothesis,
        table=table,
        data=data,
        draws=draws,
        policy_probs=policy,
        manner_probs=manner,
        sample_stats=stats,
        diagnostics=ast.literal_eval(attrs["diagnostics"]),
        settings=ast.literal_eval(attrs["settings"]),
        seed=int(attrs["seed"]),
        pi_mean_exact=pi_mean,
    )
