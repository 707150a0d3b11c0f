"""The bounds of a hypothesis's settings, and the checks that hold a value to them.

Every number a hypothesis holds is checked against :data:`BOUNDS` (:func:`check_range`): the
bounds keep every engine's arithmetic finite in float32. :data:`MAX_POLICIES` caps the number
of policy types (:func:`check_policy_count`), :data:`MIN_SCALE` the smallest positive prior
scale.
"""

from __future__ import annotations

from typing import Any

from scai.models.errors import HypothesisError
from scai.models.errors import show_value as _show

# Utilities are in units of the pot, up to MAX_POT = 1000 units:
# |U| <= 1000 (1 + |w + delta| + alpha + beta). At the corner of these bounds (|w|, alpha, beta
# and |essential_shift| 100, shift scales 100 so that a shift 6 prior sd out is about 950,
# rationality 1000 and a latent one (scale 3) 6 sd above that, 6.6e10) |lam * U| stays below
# 1e20, far inside float32's 3.4e38, and every engine's log-space softmaxes stay finite (a test
# fits each corner). Beyond, 1e308 becomes inf in float32 and inf * 0 is NaN. The
# concentration's upper bound keeps the exact engine's Dirichlet cell weights from underflowing
# (1000 does: NaN); tone fidelity 1 makes the other tones' log probability -inf (NaN again).
#: ``key: (low, high)``, both included.
BOUNDS: dict[str, tuple[float, float]] = {
    "rationality": (1e-6, 1e3),
    "rationality_scale": (0.0, 3.0),
    "pi_concentration": (1e-3, 100.0),
    "stereotype_strength": (0.0, 1.0),
    "tone_fidelity": (1e-6, 1 - 1e-6),
    "shared_scale": (0.0, 100.0),
    "currency_scale": (0.0, 100.0),
    "essential_shift": (-100.0, 100.0),
    "w": (-100.0, 100.0),
    "alpha": (0.0, 100.0),
    "beta": (0.0, 100.0),
    "stereotype weight": (0.0, 1e6),
    "lapse": (0.0, 0.5),
    "beta prior": (1e-2, 1e4),
}
#: A prior scale is 0 (the quantity fixed at its prior centre) or at least this: a tiny
#: positive one squared rounds to 0 in float32 (1e-30 broke the exact engine's Cholesky, SVI's
#: and the simulator's Normal, and left MCMC at step size 1e-72), and below 1e-3 a latent
#: log rationality or shift moves its quantity by under 0.1%: fixed, for any data.
MIN_SCALE = 1e-3
_SCALES = ("rationality_scale", "shared_scale", "currency_scale")
#: The most policy types a hypothesis may have. Every engine's cost grows with the number of
#: types K, the exact engine's simplex lattice of ``pi`` fastest: its enumeration visits
#: (n + 1)^(K - 1) compositions, 12 types take 11 s and 13 types 81 s, 20 never finish. At 12
#: its lattice already has steps of 1/5, and ultimatum-game offers and decisions cannot tell
#: that many social utilities apart.
MAX_POLICIES = 12
_WHY_K = "more types than the data can tell apart, and the exact engine's lattice explodes"


def check_policy_count(count: int, where: str = "policies") -> None:
    """A :class:`HypothesisError` at ``where`` unless there are 1 to :data:`MAX_POLICIES`
    policy types."""
    if not 1 <= count <= MAX_POLICIES:
        raise HypothesisError(
            f"{where}: {count} policy types; allowed: 1 to {MAX_POLICIES} ({_WHY_K})"
        )


def check_range(key: str, value: Any, bound: str) -> None:
    """A :class:`HypothesisError` unless ``value`` is a real number within ``BOUNDS[bound]``."""
    low, high = BOUNDS[bound]
    allowed = f"a number in [{low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, int | float):
        # np.float64 is a float; np.float32 and NumPy's integers are not, and are not stored
        numpy = type(value).__module__ == "numpy"
        hint = ": a Python int or float (pass float(x))" if numpy else ""
        raise HypothesisError(f"{key}: must be {allowed}{hint}, got {_show(value)}")
    if bound in _SCALES and not (value == 0 or MIN_SCALE <= value <= high):
        raise HypothesisError(
            f"{key}: must be 0 (fixed) or a number in [{MIN_SCALE:g}, {high:g}] (a smaller "
            "prior scale makes a latent quantity no engine can tell from a fixed one), got "
            f"{_show(value)}"
        )
    if not low <= value <= high:  # False for NaN; exact for huge ints
        raise HypothesisError(
            f"{key}: must be {allowed} ({_why(bound, value)}), got {_show(value)}"
        )


def _why(bound: str, value: float) -> str:
    if bound == "tone_fidelity":
        if value < 0.5:
            return "at 0 a manner's own tone gets probability 0, whose log is -inf"
        return "at 1 the other tones get probability 0, whose log is -inf"
    if bound == "stereotype_strength":
        return "a mixing weight"
    return "where the model's arithmetic stays finite in float32"
