"""Hypotheses: every prior and fixed setting of the generative model, as data.

A :class:`Hypothesis` is what a researcher swaps to test an idea about a group. Presets ship
with the package (:data:`PRESETS`); a TOML file defines a new one, including new policy types::

    name = "with_spite"
    rationality = 4.0            # lam, per unit of the pot
    rationality_scale = 0.0      # > 0 makes lam latent: lam ~ LogNormal(log(rationality), scale)
    pi_concentration = 0.5       # Dirichlet concentration of the group mixture (one per policy
                                 # also allowed: [0.5, 0.5, 0.5, 0.5])
    stereotype_strength = 0.0    # s in rho = (1 - s) uniform + s stereotype
    tone_fidelity = 0.85

    [policies.spiteful]          # a [policies] table replaces the default three
    w = -1.0

    [stereotype.selfish]         # manner weights of a policy's stereotype row
    rude = 1.0

    [currency]                   # per-currency shift delta_c of the weight on the other's payoff
    shared_scale = 0.0           # delta_0 ~ Normal(0, shared_scale), shared by all currencies
    currency_scale = 0.0         # delta_c ~ Normal(delta_0 + essential_shift * essential_c, scale)
    essential_shift = 0.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w
import torch

from scai.models.language import MANNERS, coupling_table, emission_table
from scai.models.policies import DEFAULT_POLICIES, PolicyType

_TOP_KEYS = {
    "name": str,
    "description": str,
    "rationality": float,
    "rationality_scale": float,
    "pi_concentration": (float, list),
    "stereotype_strength": float,
    "tone_fidelity": float,
    "policies": dict,
    "stereotype": dict,
    "currency": dict,
}
_POLICY_KEYS = ("w", "alpha", "beta", "description")
_CURRENCY_KEYS = ("shared_scale", "currency_scale", "essential_shift")


class HypothesisError(ValueError):
    """An invalid hypothesis; the message names the key, the value and what is allowed."""


@dataclass(frozen=True)
class Hypothesis:
    """Priors and fixed settings of the social-contract model (see the module docstring)."""

    name: str = "neutral"
    description: str = ""
    policies: tuple[PolicyType, ...] = DEFAULT_POLICIES
    pi_concentration: tuple[float, ...] = (0.5, 0.5, 0.5)
    rationality: float = 4.0
    rationality_scale: float = 0.0
    stereotype: dict[str, dict[str, float]] = field(default_factory=dict)
    stereotype_strength: float = 0.0
    tone_fidelity: float = 0.85
    shared_scale: float = 0.0
    currency_scale: float = 0.0
    essential_shift: float = 0.0

    def __post_init__(self) -> None:
        names = self.policy_names
        if len(names) < 1:
            raise HypothesisError("policies: at least one policy type is required")
        if len(set(names)) != len(names):
            raise HypothesisError(f"policies: names must be unique, got {list(names)}")
        if len(self.pi_concentration) != len(names):
            raise HypothesisError(
                f"pi_concentration: needs one value per policy ({len(names)}), "
                f"got {len(self.pi_concentration)}"
            )
        _positive("pi_concentration", self.pi_concentration)
        _positive("rationality", (self.rationality,))
        for key in ("rationality_scale", "shared_scale", "currency_scale"):
            value = getattr(self, key)
            if not math.isfinite(value) or value < 0:
                raise HypothesisError(f"{key}: must be a finite number >= 0, got {value!r}")
        if not math.isfinite(self.essential_shift):
            raise HypothesisError(f"essential_shift: must be finite, got {self.essential_shift!r}")
        if not 0 <= self.stereotype_strength <= 1:
            raise HypothesisError(
                f"stereotype_strength: must be in [0, 1], got {self.stereotype_strength!r}"
            )
        if not 0 < self.tone_fidelity <= 1:
            raise HypothesisError(f"tone_fidelity: must be in (0, 1], got {self.tone_fidelity!r}")
        for policy, row in self.stereotype.items():
            if policy not in names:
                raise HypothesisError(
                    f"stereotype.{policy}: unknown policy; allowed: {', '.join(names)}"
                )
            for manner, weight in row.items():
                if manner not in MANNERS:
                    raise HypothesisError(
                        f"stereotype.{policy}.{manner}: unknown manner; "
                        f"allowed: {', '.join(MANNERS)}"
                    )
                if not (isinstance(weight, int | float) and weight >= 0):
                    raise HypothesisError(
                        f"stereotype.{policy}.{manner}: weight must be >= 0, got {weight!r}"
                    )
            if sum(row.values()) <= 0:
                raise HypothesisError(f"stereotype.{policy}: weights must not all be 0")

    # -- derived quantities -------------------------------------------------------------------
    @property
    def policy_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.policies)

    @property
    def rationality_is_latent(self) -> bool:
        return self.rationality_scale > 0

    @property
    def has_currency_shift(self) -> bool:
        return self.shared_scale > 0 or self.currency_scale > 0 or self.essential_shift != 0

    def policy_index(self, name: str) -> int:
        try:
            return self.policy_names.index(name)
        except ValueError:
            raise HypothesisError(
                f"unknown policy {name!r}; allowed: {', '.join(self.policy_names)}"
            ) from None

    def coupling(self) -> torch.Tensor:
        """``rho[k, m] = P(manner m | policy k)``."""
        return coupling_table(self.policy_names, self.stereotype, self.stereotype_strength)

    def emission(self) -> torch.Tensor:
        """``E[m, t] = P(tone t | manner m)``."""
        return emission_table(self.tone_fidelity)

    def with_(self, **changes: Any) -> Hypothesis:
        """A copy with some settings changed (validated again)."""
        return replace(self, **changes)

    # -- TOML ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "rationality": self.rationality,
            "rationality_scale": self.rationality_scale,
            "pi_concentration": list(self.pi_concentration),
            "stereotype_strength": self.stereotype_strength,
            "tone_fidelity": self.tone_fidelity,
            "policies": {
                p.name: {"w": p.w, "alpha": p.alpha, "beta": p.beta, "description": p.description}
                for p in self.policies
            },
            "stereotype": {k: dict(v) for k, v in self.stereotype.items()},
            "currency": {
                "shared_scale": self.shared_scale,
                "currency_scale": self.currency_scale,
                "essential_shift": self.essential_shift,
            },
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(tomli_w.dumps(self.to_dict()))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "hypothesis") -> Hypothesis:
        for key, value in raw.items():
            if key not in _TOP_KEYS:
                raise HypothesisError(
                    f"{source}: unknown key {key!r}; allowed: {', '.join(_TOP_KEYS)}"
                )
            expected = _TOP_KEYS[key]
            if expected is float:
                expected = (int, float)
            elif isinstance(expected, tuple) and float in expected:
                expected = (int, float, list)
            if isinstance(value, bool) or not isinstance(value, expected):
                raise HypothesisError(
                    f"{source}: key {key!r} has value {value!r}; expected {_describe(key)}"
                )
        kwargs: dict[str, Any] = {}
        for key in ("name", "description", "rationality", "rationality_scale"):
            if key in raw:
                kwargs[key] = raw[key]
        for key in ("stereotype_strength", "tone_fidelity"):
            if key in raw:
                kwargs[key] = float(raw[key])
        if "policies" in raw:
            policies = []
            for pname, spec in raw["policies"].items():
                if not isinstance(spec, dict):
                    raise HypothesisError(f"{source}: policies.{pname} must be a table")
                for k in spec:
                    if k not in _POLICY_KEYS:
                        raise HypothesisError(
                            f"{source}: policies.{pname}: unknown key {k!r}; "
                            f"allowed: {', '.join(_POLICY_KEYS)}"
                        )
                try:
                    policies.append(PolicyType(name=pname, **spec))
                except (TypeError, ValueError) as err:
                    raise HypothesisError(f"{source}: policies.{pname}: {err}") from None
            kwargs["policies"] = tuple(policies)
        n_policies = len(kwargs.get("policies", DEFAULT_POLICIES))
        conc = raw.get("pi_concentration", 0.5)
        if isinstance(conc, list):
            kwargs["pi_concentration"] = tuple(
                _number(c, f"{source}: pi_concentration[{i}]") for i, c in enumerate(conc)
            )
        else:
            kwargs["pi_concentration"] = (float(conc),) * n_policies
        if "stereotype" in raw:
            stereotype = {}
            for policy, row in raw["stereotype"].items():
                if not isinstance(row, dict):
                    raise HypothesisError(
                        f"{source}: stereotype.{policy} has value {row!r}; expected a table of "
                        "manner weights, e.g. [stereotype.selfish] rude = 1.0"
                    )
                stereotype[policy] = {
                    m: _number(w, f"{source}: stereotype.{policy}.{m}") for m, w in row.items()
                }
            kwargs["stereotype"] = stereotype
        for k, v in raw.get("currency", {}).items():
            if k not in _CURRENCY_KEYS:
                raise HypothesisError(
                    f"{source}: currency: unknown key {k!r}; allowed: {', '.join(_CURRENCY_KEYS)}"
                )
            kwargs[k] = _number(v, f"{source}: currency.{k}")
        try:
            return cls(**kwargs)
        except HypothesisError as err:
            raise HypothesisError(f"{source}: {err}") from None

    @classmethod
    def load(cls, path: str | Path) -> Hypothesis:
        """A ``social_contract`` hypothesis file (read by the one loader,
        :func:`scai.models.hypothesis_files.load_hypothesis_file`)."""
        from scai.models.hypothesis_files import load_hypothesis_file

        return load_hypothesis_file(path, family="social_contract")


def _number(value: Any, where: str) -> float:
    """``value`` as a float, or a :class:`HypothesisError` naming ``where`` it was found."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HypothesisError(f"{where} has value {value!r}; expected a number")
    return float(value)


def _positive(key: str, values: tuple[float, ...]) -> None:
    for value in values:
        if not (math.isfinite(value) and value > 0):
            raise HypothesisError(f"{key}: must be a finite number > 0, got {value!r}")


def _describe(key: str) -> str:
    return {
        "name": "a string",
        "description": "a string",
        "pi_concentration": "a number > 0 or a list of them, one per policy",
        "policies": "a table of policy tables",
        "stereotype": "a table of manner weights per policy",
        "currency": "a table with shared_scale, currency_scale, essential_shift",
    }.get(key, "a number")


_STEREOTYPE = {
    "selfish": {"rude": 1.0},
    "fair": {"neutral": 1.0},
    "altruistic": {"sycophantic": 0.5, "polite": 0.5},
}

#: The registry of preset hypotheses: the one place their names are defined.
PRESETS: dict[str, Hypothesis] = {
    h.name: h
    for h in (
        Hypothesis(
            name="neutral",
            description="No stereotype: manners say nothing about policy. No currency effect.",
        ),
        Hypothesis(
            name="stereotyped",
            description="Rude goes with selfish, sycophantic and polite with altruistic, "
            "neutral with fair (strength 0.8). No currency effect.",
            stereotype=_STEREOTYPE,
            stereotype_strength=0.8,
        ),
        Hypothesis(
            name="currency_invariant",
            description="The norm is the same whatever the currency (no currency shift).",
        ),
        Hypothesis(
            name="pooled",
            description="Currencies shift the norm by a shared amount delta_0 ~ N(0, 0.5) plus "
            "a small currency-specific deviation N(0, 0.02): strong hierarchical pooling. "
            "(With a deviation scale of 0.1 an unseen currency's shift is uncertain enough to "
            "move a selfish assistant's offers by about 8 points.)",
            shared_scale=0.5,
            currency_scale=0.02,
        ),
        Hypothesis(
            name="essential_goods_shared",
            description="Currencies unpooled, delta_c ~ N(2 if essential else 0, 0.5): essential "
            "goods are believed to be shared (an altruistic prior).",
            currency_scale=0.5,
            essential_shift=2.0,
        ),
    )
}


def get_hypothesis(name_or_path: str | Path | Hypothesis) -> Hypothesis:
    """A preset by name, a :class:`Hypothesis` as is, or one loaded from a ``.toml`` file."""
    if isinstance(name_or_path, Hypothesis):
        return name_or_path
    text = str(name_or_path)
    if text in PRESETS:
        return PRESETS[text]
    if text.endswith(".toml"):
        return Hypothesis.load(text)
    raise HypothesisError(
        f"unknown hypothesis {text!r}; allowed: {', '.join(PRESETS)} or a path to a .toml file"
    )
