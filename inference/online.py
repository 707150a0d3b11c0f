"""Online updating: the posterior after epoch ``e`` plus the interactions of epoch ``e + 1``
gives the posterior after ``e + 1``. The assistant runs this every epoch.

* exact: action log-likelihoods add across epochs, so only the new interactions are scored
  and the grid posterior is recomputed (:func:`scai.inference.exact.update_exact`);
* svi: the guide is warm-started from the previous fit;
* mcmc: refit on all data (NUTS has no cheap warm start worth its bookkeeping here).
"""

from __future__ import annotations

import pandas as pd

from scai.inference.exact import update_exact
from scai.inference.fit import prepare
from scai.inference.posterior import Posterior
from scai.inference.svi import fit_svi


def update(previous: Posterior, new_interactions: pd.DataFrame, **options) -> Posterior:
    """Condition ``previous`` on ``new_interactions`` as well (same hypothesis and engine)."""
    combined = pd.concat([previous.table, new_interactions], ignore_index=True)
    table, data, hyp = prepare(combined, previous.hypothesis)
    if previous.engine == "exact":
        return update_exact(previous, table, data)
    if previous.engine == "svi":
        settings = {**previous.settings, **options}
        return fit_svi(data, hyp, table=table, seed=previous.seed, warm_start=previous, **settings)
    from scai.inference.mcmc import fit_mcmc

    settings = {k: v for k, v in previous.settings.items() if k != "parallel"}
    return fit_mcmc(data, hyp, table=table, seed=previous.seed, **{**settings, **options})
