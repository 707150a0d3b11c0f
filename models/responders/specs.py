"""The two responder hypotheses' priors as data: one spec per hypothesis.

* :class:`NormMixtureSpec`: a mixture of named norms, the policies of a
  :class:`~scai.models.hypotheses.Hypothesis` (a ``social_contract`` hypothesis file, e.g.
  ``experiments/hypotheses/human_norms.toml``), plus the noise priors;
* :class:`InequitySpec`: a continuous Fehr-Schmidt envy per subject (an
  ``inequity_aversion`` hypothesis file, e.g. ``experiments/hypotheses/human_inequity.toml``);
  its keys, with their bounds, are :data:`INEQUITY_KEYS`.

Both are read from TOML by the one loader,
:func:`scai.models.hypothesis_files.load_hypothesis_file`; :func:`as_responder_spec` turns what
it loads into a responder spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from scai.models.errors import HypothesisError
from scai.models.hypotheses import Hypothesis
from scai.models.hypothesis_names import check_name


@dataclass(frozen=True)
class BetaPrior:
    """A rate ``~ Beta(a, b)`` per role; ``a = 0`` switches it off (the rate is 0)."""

    a: float
    b: float

    @property
    def enabled(self) -> bool:
        return self.a > 0


#: Default noise priors, shared by both hypotheses so that they differ only in their norms:
#: a lapse (a decision made at random) ``eps_r ~ Beta(1, 30)`` (prior mean 3%) and inattentive
#: subjects (who answer every trial at random) ``rho_r ~ Beta(1, 20)`` (prior mean 5%).
DEFAULT_LAPSE = BetaPrior(1.0, 30.0)
DEFAULT_INATTENTIVE = BetaPrior(1.0, 20.0)
#: People differ in how consistently they apply their norm: subject s's rationality is
#: ``lam_s = lam_r exp(tau_r zeta_s)``, ``zeta_s ~ Normal(0, 1)``, ``tau_r ~ HalfNormal(1)``,
#: integrated out with Gauss-Hermite quadrature on 5 nodes.
DEFAULT_SPREAD_SCALE = 1.0
DEFAULT_RATIONALITY_NODES = 5


@dataclass(frozen=True)
class NormMixtureSpec:
    """A norm-mixture hypothesis: the named norms and priors of a
    :class:`~scai.models.hypotheses.Hypothesis` (its ``policies``, ``pi_concentration``,
    ``rationality`` and ``rationality_scale``), and the noise priors."""

    hypothesis: Hypothesis
    lapse: BetaPrior = DEFAULT_LAPSE
    inattentive: BetaPrior = DEFAULT_INATTENTIVE
    rationality_spread_scale: float = DEFAULT_SPREAD_SCALE
    rationality_nodes: int = DEFAULT_RATIONALITY_NODES

    kind = "norm_mixture"

    @property
    def name(self) -> str:
        return self.hypothesis.name

    @property
    def description(self) -> str:
        return self.hypothesis.description

    @property
    def norms(self) -> tuple[str, ...]:
        return self.hypothesis.policy_names

    @property
    def rationality(self) -> float:
        return self.hypothesis.rationality

    @property
    def rationality_scale(self) -> float:
        return self.hypothesis.rationality_scale

    def to_dict(self) -> dict[str, Any]:
        """The hypothesis file it is read from (:func:`as_responder_spec`): its hypothesis's
        settings, loadable again, and the noise priors only where they are not the defaults
        a file gets (no file key sets them: such a spec is made in Python, and its
        ``lapse``, a prior, would not load as a file's fixed lapse)."""
        out = self.hypothesis.to_dict()
        if self._noise() != NormMixtureSpec(self.hypothesis)._noise():
            out.update(self._noise())
        return out

    def _noise(self) -> dict[str, Any]:
        return {
            "lapse": [self.lapse.a, self.lapse.b],
            "inattentive": [self.inattentive.a, self.inattentive.b],
            "rationality_spread_scale": self.rationality_spread_scale,
            "rationality_nodes": self.rationality_nodes,
        }


#: Every key of an ``inequity_aversion`` hypothesis file, and what it must be.
INEQUITY_KEYS: dict[str, str] = {
    "model": "the string 'inequity_aversion'",
    "name": "a string",
    "description": "a string",
    "envy_mu_loc": "a finite number (prior mean of the log median envy mu_r)",
    "envy_mu_scale": "a number in (0, 100] (prior sd of mu_r)",
    "envy_sigma_scale": "a number in (0, 100] (HalfNormal scale of sigma_r, the spread of log "
    "envy)",
    "rationality": "a number in (0, 1000] (median lam, log-odds per unit of the pot)",
    "rationality_scale": "a number in [0, 100] (LogNormal scale of lam; 0 fixes lam)",
    "rationality_spread_scale": "a number in [0, 100] (HalfNormal scale of tau_r, the spread "
    "of log lam_s across subjects; 0: every subject of a role has lam_r)",
    "rationality_nodes": "a whole number from 1 to 41 (Gauss-Hermite nodes of the lam_s integral)",
    "lapse_a": "a number >= 0 (Beta prior of the lapse rate; 0 switches it off)",
    "lapse_b": "a number > 0",
    "inattentive_a": "a number >= 0 (Beta prior of the inattentive share; 0 switches it off)",
    "inattentive_b": "a number > 0",
    "envy_min": "a number > 0 (lowest envy of the integration grid)",
    "envy_max": "a number > envy_min (highest envy of the integration grid)",
    "envy_bins": "a whole number from 20 to 1000 (bins of the envy integral)",
}


#: The largest value an inequity-aversion key may take (its lower bound is in the check).
RANGE_TOPS = {
    "envy_mu_scale": 100.0,
    "envy_sigma_scale": 100.0,
    "rationality": 1e3,
    "rationality_scale": 100.0,
    "rationality_spread_scale": 100.0,
}


@dataclass(frozen=True)
class InequitySpec:
    """Priors of the inequity-aversion hypothesis (see :mod:`scai.models.responders`). TOML
    keys are the field names, plus ``model = "inequity_aversion"`` (see
    ``experiments/hypotheses/human_inequity.toml``)."""

    name: str = "inequity_aversion"
    description: str = ""
    envy_mu_loc: float = -1.0
    envy_mu_scale: float = 1.5
    envy_sigma_scale: float = 1.5
    rationality: float = 0.2
    rationality_scale: float = 1.0
    rationality_spread_scale: float = DEFAULT_SPREAD_SCALE
    rationality_nodes: int = DEFAULT_RATIONALITY_NODES
    lapse_a: float = DEFAULT_LAPSE.a
    lapse_b: float = DEFAULT_LAPSE.b
    inattentive_a: float = DEFAULT_INATTENTIVE.a
    inattentive_b: float = DEFAULT_INATTENTIVE.b
    envy_min: float = 0.001
    envy_max: float = 100.0
    envy_bins: int = 60

    kind = "inequity_aversion"

    def __post_init__(self) -> None:
        def bad(key: str) -> HypothesisError:
            return HypothesisError(
                f"{key}: got {getattr(self, key)!r}; expected {INEQUITY_KEYS[key]}"
            )

        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("name", "description"):
                if not isinstance(value, str):
                    raise bad(f.name)
                if f.name == "name":  # part of file names, as a social-contract hypothesis's
                    check_name(value)
            elif (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise bad(f.name)
        for key in ("envy_mu_scale", "envy_sigma_scale", "rationality", "envy_min"):
            if getattr(self, key) <= 0:
                raise bad(key)
        # Upper bounds where the sampler still finds a start (a scale of 1e300 did not: the
        # library's error named no key) and the arithmetic stays finite (the social-contract
        # files' rationality bound).
        for key, high in RANGE_TOPS.items():
            if getattr(self, key) > high:
                raise bad(key)
        for key in ("lapse_b", "inattentive_b"):
            if getattr(self, key) <= 0:
                raise bad(key)
        for key in ("rationality_scale", "rationality_spread_scale", "lapse_a", "inattentive_a"):
            if getattr(self, key) < 0:
                raise bad(key)
        nodes = self.rationality_nodes
        if not float(nodes).is_integer() or not 1 <= nodes <= 41:
            raise bad("rationality_nodes")
        # Each bin is a column of every subject's likelihood: 10^8 bins took 11 GB and no end.
        if not float(self.envy_bins).is_integer() or not 20 <= self.envy_bins <= 1000:
            raise bad("envy_bins")
        if self.envy_max <= self.envy_min:
            raise bad("envy_max")

    @property
    def lapse(self) -> BetaPrior:
        return BetaPrior(self.lapse_a, self.lapse_b)

    @property
    def inattentive(self) -> BetaPrior:
        return BetaPrior(self.inattentive_a, self.inattentive_b)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "inequity hypothesis") -> InequitySpec:
        """Validate ``raw`` (a parsed TOML table); errors name the source and the bad key."""
        for key, value in raw.items():
            if key not in INEQUITY_KEYS:
                raise HypothesisError(
                    f"{source}: unknown key {key!r}; allowed: {', '.join(INEQUITY_KEYS)}"
                )
            if key == "model" and value != "inequity_aversion":
                raise HypothesisError(
                    f"{source}: key 'model' has value {value!r}; expected {INEQUITY_KEYS['model']}"
                )
        try:
            return cls(**{k: v for k, v in raw.items() if k != "model"})
        except HypothesisError as err:
            raise HypothesisError(f"{source}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.kind, **{f.name: getattr(self, f.name) for f in fields(self)}}


Spec = NormMixtureSpec | InequitySpec


#: What a :class:`NormMixtureSpec` reads of its :class:`~scai.models.hypotheses.Hypothesis`.
NORM_MIXTURE_READS = (
    "name",
    "description",
    "policies",
    "pi_concentration",
    "rationality",
    "rationality_scale",
)


def as_responder_spec(loaded: Hypothesis | Spec) -> Spec:
    """A responder spec: a :class:`NormMixtureSpec` over the policies of a
    :class:`~scai.models.hypotheses.Hypothesis` (with the default noise priors), or the spec
    itself. A hypothesis that sets what the norm mixture does not read (a lapse, stereotypes,
    currencies: :data:`NORM_MIXTURE_READS`) is a :class:`HypothesisError` naming them: the
    human-data run would fit without them, silently."""
    if isinstance(loaded, Hypothesis):
        plain = Hypothesis(**{key: getattr(loaded, key) for key in NORM_MIXTURE_READS})
        ignored = [
            f.name
            for f in fields(Hypothesis)
            if f.name not in NORM_MIXTURE_READS
            and getattr(loaded, f.name) != getattr(plain, f.name)
        ]
        if ignored:
            raise HypothesisError(
                f"hypothesis {loaded.name!r} sets {', '.join(ignored)}, which a responder "
                f"norm mixture does not use: it reads {', '.join(NORM_MIXTURE_READS[2:])} (its "
                "lapse and inattention priors are its own); leave those settings out"
            )
        return NormMixtureSpec(loaded)
    if isinstance(loaded, NormMixtureSpec | InequitySpec):
        return loaded
    raise TypeError(f"not a responder hypothesis: {loaded!r}")
