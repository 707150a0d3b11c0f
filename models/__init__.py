"""The generative story of scai: game rules, policies as social utilities, language,
hypotheses (priors as data) and the Pyro model, usable as simulator and scorer."""

from scai.models.data import read_interactions, validate_frame
from scai.models.errors import (
    DataError,
    DuplicateGamesWarning,
    HypothesisError,
    RunError,
    ScaiError,
)
from scai.models.game import CURRENCIES, Currency, register_currency
from scai.models.hypotheses import PRESETS, Hypothesis, get_hypothesis
from scai.models.language import MANNERS, TONES
from scai.models.layout import GroupData
from scai.models.model import social_contract_model
from scai.models.policies import PolicyType
from scai.models.simulate import simulate

__all__ = [
    "CURRENCIES",
    "MANNERS",
    "PRESETS",
    "TONES",
    "Currency",
    "DataError",
    "DuplicateGamesWarning",
    "GroupData",
    "Hypothesis",
    "HypothesisError",
    "PolicyType",
    "RunError",
    "ScaiError",
    "get_hypothesis",
    "read_interactions",
    "register_currency",
    "simulate",
    "social_contract_model",
    "validate_frame",
]
