"""The SVI engine: stochastic variational inference with the discrete sites enumerated.

* Objective: ``TraceEnum_ELBO`` on :func:`models.model.social_contract_model`, with ``policy``
  and ``manner`` enumerated in parallel (``JitTraceEnum_ELBO`` with ``jit=True``).
* Guide (``guide=``): ``"normal"`` (default), Pyro's ``AutoNormal``: a mean-field normal on
  the continuous sites in the unconstrained space (``pi`` through its stick-breaking transform,
  ``lam`` on the log scale, currency shifts as they are); cheap, and it fits ``pi`` well. It
  ignores posterior correlations: with a latent currency shift, ``pi`` and the shift trade off
  (an altruist in a currency shifted down looks like a selfish user), and the per-user type
  probabilities of users the data leave uncertain come out ~0.04 off the exact engine's.
  ``"mvn"``, ``AutoMultivariateNormal``: one full-covariance normal over every continuous site
  of every simulation (simulations are independent, so most of the covariance stays ~0); it
  captures that trade-off at a cost quadratic in the number of latent values.
* Convergence: the mean loss of the last ``window`` steps changes by less than ``rtol``
  (relative) from the window before; a warning if ``max_steps`` is reached first.
* Minibatches: ``subsample_size`` users per step, for large populations.
* Per-user types: averaged over guide draws of ``P(z_u = k | theta, data)``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import pyro
import torch
from pyro.infer import SVI, JitTraceEnum_ELBO, TraceEnum_ELBO
from pyro.infer.autoguide import AutoMultivariateNormal, AutoNormal, init_to_median

from inference.draws import latent_sites, squeeze_site
from inference.posterior import Posterior
from inference.progress import progress_bar
from models.hypotheses import Hypothesis
from models.layout import GroupData
from models.model import MAX_PLATE_NESTING, social_contract_model


class ConvergenceWarning(UserWarning):
    """SVI reached its step cap before the ELBO settled."""


GUIDES = {"normal": AutoNormal, "mvn": AutoMultivariateNormal}


def _guide_draws(guide, num_draws: int) -> dict[str, torch.Tensor]:
    """``num_draws`` draws of every site of the guide, vectorised over draws."""
    if isinstance(guide, AutoNormal):
        with pyro.plate("draws", num_draws, dim=-MAX_PLATE_NESTING - 1):
            return guide()
    # AutoContinuous: draw the joint latent, then map each block to its site's support.
    latent = guide.get_posterior().sample((num_draws,))  # [D, latent_dim]
    out, pos = {}, 0
    for name, site in guide.prototype_trace.iter_stochastic_nodes():
        shape = guide._unconstrained_shapes[name]  # the guide's own packing order
        size = math.prod(shape)
        unconstrained = latent[:, pos : pos + size].reshape(num_draws, *shape)
        out[name] = torch.distributions.biject_to(site["fn"].support)(unconstrained)
        pos += size
    assert pos == latent.shape[-1]
    return out


def fit_svi(
    data: GroupData,
    hypothesis: Hypothesis,
    *,
    table=None,
    seed: int = 0,
    num_draws: int = 1000,
    learning_rate: float = 0.05,
    max_steps: int = 3000,
    min_steps: int = 200,
    rtol: float = 1e-4,
    window: int = 50,
    subsample_size: int | None = None,
    jit: bool = False,
    warm_start: Posterior | None = None,
    progress: bool = False,
    guide: str = "normal",
) -> Posterior:
    """Fit the guide until the ELBO converges, then draw ``num_draws`` parameter sets."""
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    sites = latent_sites(hypothesis)

    def model(subsample=None):
        return social_contract_model(data, hypothesis, subsample_size=subsample)

    if guide not in GUIDES:
        raise ValueError(f"guide must be one of {', '.join(GUIDES)}, got {guide!r}")
    guide_name = guide
    guide = GUIDES[guide](pyro.poutine.block(model, expose=list(sites)), init_loc_fn=init_to_median)
    guide()  # create the parameters
    if warm_start is not None and warm_start.engine_state is not None:
        pyro.get_param_store().set_state(warm_start.engine_state)
    elbo_class = JitTraceEnum_ELBO if jit else TraceEnum_ELBO
    elbo = elbo_class(max_plate_nesting=MAX_PLATE_NESTING, ignore_jit_warnings=True)
    svi = SVI(model, guide, pyro.optim.ClippedAdam({"lr": learning_rate}), elbo)

    losses: list[float] = []
    converged = False
    bar = progress_bar(total=max_steps, desc="svi", disable=not progress)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        for step in range(max_steps):
            losses.append(svi.step(subsample=subsample_size))
            bar.update()
            if step + 1 >= max(min_steps, 2 * window) and (step + 1) % window == 0:
                new = sum(losses[-window:]) / window
                old = sum(losses[-2 * window : -window]) / window
                bar.set_postfix(elbo=f"{-new:.2f}")
                if abs(new - old) <= rtol * abs(old):
                    converged = True
                    break
    bar.close()
    if not converged:
        warnings.warn(
            f"SVI did not converge in {max_steps} steps (relative ELBO change above {rtol}); "
            "raise max_steps or learning_rate",
            ConvergenceWarning,
            stacklevel=2,
        )

    S = data.shape[0]
    with torch.no_grad():
        sample = _guide_draws(guide, num_draws)
    draws = {
        name: squeeze_site(name, sample[name], S).unsqueeze(0) for name in sites
    }  # [1, D, S, ...]
    diagnostics: dict[str, Any] = {
        "converged": converged,
        "steps": len(losses),
        "final_elbo": -sum(losses[-window:]) / min(window, len(losses)),
        "elbo_trace": [-x for x in losses],
    }
    settings = {
        "learning_rate": learning_rate,
        "max_steps": max_steps,
        "rtol": rtol,
        "window": window,
        "subsample_size": subsample_size,
        "jit": jit,
        "num_draws": num_draws,
        "guide": guide_name,
    }
    return Posterior.from_draws(
        "svi",
        data,
        hypothesis,
        table,
        draws,
        diagnostics=diagnostics,
        settings=settings,
        seed=seed,
        engine_state=pyro.get_param_store().get_state(),
    )
