"""The generative story of scai: game rules, policies as social utilities, language,
hypotheses (priors as data) and the Pyro model, usable as simulator and scorer."""

from models.data import DataError, read_interactions, validate_frame
from models.game import CURRENCIES, Currency
from models.hypotheses import PRESETS, Hypothesis, get_hypothesis
from models.language import MANNERS, TONES
from models.layout import GroupData
from models.model import social_contract_model
from models.policies import PolicyType
from models.simulate import simulate

__all__ = [
    "CURRENCIES",
    "MANNERS",
    "PRESETS",
    "TONES",
    "Currency",
    "DataError",
    "GroupData",
    "Hypothesis",
    "PolicyType",
    "get_hypothesis",
    "read_interactions",
    "simulate",
    "social_contract_model",
    "validate_frame",
]
