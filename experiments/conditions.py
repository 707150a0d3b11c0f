"""What an experimental condition is: who the users are, what the assistant assumes, and the
protocol's settings; with the seed and cache key each condition gets."""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, fields

from scai.models.errors import HypothesisError, StereotypeStrengthWarning, UnusedLapseWarning
from scai.models.hypotheses import PRESETS, Hypothesis, get_hypothesis, is_hypothesis_file

VARIANTS = ("1v9", "9v1")


SCHEDULES = ("grouped", "alternating")


@dataclass(frozen=True)
class Condition:
    """One experimental condition: who the users are and what the assistant assumes."""

    name: str
    policy: str  # the users' norm: a policy or a mixture "selfish=0.8,altruistic=0.2"
    manner: str | None = "neutral"  # every user's manner (None: drawn uniformly)
    currency: str | None = None  # None: a training currency drawn per simulation
    hypothesis: str = "neutral"  # the assistant's prior (preset name or TOML path)
    users: int = 9
    rationality: float = 4.0  # the users' true rationality
    stereotype_strength: float | None = None  # overrides the hypothesis's, for sweeps
    assistant_rationality: float | None = None  # overrides the hypothesis's, for sweeps
    variant: str = "1v9"
    true_policy: str | None = None  # the one norm, for one-norm groups
    # Conditions that share a stream share their random numbers (common random numbers): the
    # users' types, schedules, pots and actions are then the same, so a contrast between them
    # (rude vs neutral manners) is paired. Default: the condition's own name.
    stream: str | None = None
    save_posterior: bool = True  # write the last posterior (NetCDF) with the cached results
    # Further settings of the assistant's hypothesis, ``(key, value)`` pairs applied after the
    # two overrides above (for sweeps: ``scai sweep``); keys: :data:`HYPOTHESIS_SETTINGS`.
    hypothesis_settings: tuple[tuple[str, float], ...] = ()


#: The hypothesis settings a condition may override (``Condition.hypothesis_settings``): a
#: number each; ``pi_concentration`` is one number given to every policy type.
HYPOTHESIS_SETTINGS = (
    "pi_concentration",
    "rationality_scale",
    "tone_fidelity",
    "lapse",
    "shared_scale",
    "currency_scale",
    "essential_shift",
)


@dataclass(frozen=True)
class Settings:
    sims: int = 20
    epochs: int = 5
    seed: int = 0
    engine: str = "exact"
    acting: str = "sample"
    rounds: int = 8
    pot_range: tuple[int, int] = (10, 100)
    curve: bool = False  # per-interaction learning curve (exact engine)
    schedule: str = "grouped"  # order of the return games: see the module docstring

    def __post_init__(self) -> None:
        # A learning curve is every prefix's exact posterior: asked of another engine, it was
        # silently missing, and whatever measured it failed minutes later.
        if self.curve and self.engine != "exact":
            raise ValueError(
                f"Settings: learning curves (curve=True) are fitted by the exact engine; "
                f"engine={self.engine!r} is not allowed with them"
            )


def assistant_hypothesis(cond: Condition) -> Hypothesis:
    """The condition's hypothesis: its file or preset with the condition's settings."""
    with warnings.catch_warnings():
        if cond.stereotype_strength is not None:  # the file's unset strength is not the one used
            warnings.simplefilter("ignore", StereotypeStrengthWarning)
        hyp = get_hypothesis(cond.hypothesis)
    changes: dict[str, object] = {}
    if cond.stereotype_strength is not None:
        changes["stereotype_strength"] = cond.stereotype_strength
    if cond.assistant_rationality is not None:
        changes["rationality"] = cond.assistant_rationality
    for key, value in cond.hypothesis_settings:
        if key not in HYPOTHESIS_SETTINGS:
            raise HypothesisError(
                f"condition {cond.name!r}: {key!r} is not a hypothesis setting a condition may "
                f"change; allowed: {', '.join(HYPOTHESIS_SETTINGS)}"
            )
        changes[key] = value  # (one pi_concentration for every policy: with_ spreads it)
    if not changes:
        return hyp
    # One copy, validated once (a sweep builds tens of thousands of these). A lapse set beside
    # the hypothesis's lapse_prior, or a stereotype strength of no table, is a sweep's setting
    # that changes nothing: the sweep refuses it, naming its key
    # (scai.experiments.sweep.cells), rather than the warning of with_.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedLapseWarning)
        warnings.simplefilter("ignore", StereotypeStrengthWarning)  # the sweep refuses it
        return hyp.with_(**changes)


def hypothesis_label(hypothesis: str) -> str:
    """How a condition's name shows its hypothesis: a preset's name, or a file's own ``name``,
    not its path as typed (``h.toml`` and ``./h.toml`` are one condition, one seed, one cache
    entry)."""
    return hypothesis if hypothesis in PRESETS else get_hypothesis(hypothesis).name


def _fields(record) -> dict[str, object]:
    """A flat dataclass's fields by name: what ``asdict`` gives it, without its deep copy."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


def fingerprint(
    cond: Condition, settings: Settings, seed: int, hypothesis: Hypothesis | None = None
) -> str:
    """The condition's cache key: of its fields, the settings, the seed and the contents of
    its hypothesis (``hypothesis``, if given, is ``assistant_hypothesis(cond)`` already read)."""
    # The hypothesis's contents, not just its name: a changed preset or file invalidates.
    hypothesis = (hypothesis or assistant_hypothesis(cond)).to_dict()
    condition = _fields(cond)
    if is_hypothesis_file(cond.hypothesis):  # its contents count, not how its path is spelled
        condition["hypothesis"] = "file"
    if not cond.hypothesis_settings:  # conditions without any keep their fingerprints
        del condition["hypothesis_settings"]
    text = json.dumps(
        {
            "condition": condition,
            "settings": _fields(settings),
            "seed": seed,
            "hypothesis": hypothesis,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def condition_seed(seed: int, name: str) -> int:
    return int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:8], 16)
