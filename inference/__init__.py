"""Inference engines over the social-contract model, and their common result.

``fit(data, hypothesis, engine="exact"|"svi"|"mcmc", seed=..., **options) -> Posterior``.
"""

from inference.errors import EngineError
from inference.fit import ENGINES, fit, prepare
from inference.posterior import Posterior

__all__ = ["ENGINES", "EngineError", "Posterior", "fit", "prepare"]
