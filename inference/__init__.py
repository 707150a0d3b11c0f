"""Inference engines over the social-contract model, and their common result.

``fit(data, hypothesis, engine="exact"|"svi"|"mcmc", seed=..., **options) -> Posterior``.
"""

from scai.inference.errors import EngineError
from scai.inference.fit import ENGINES, fit, prepare
from scai.inference.posterior import Posterior
from scai.models.errors import ScaiError

__all__ = ["ENGINES", "EngineError", "Posterior", "ScaiError", "fit", "prepare"]
