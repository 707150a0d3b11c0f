"""Hypotheses: every prior and fixed setting of the generative model, as data.

A :class:`Hypothesis` is what a researcher swaps to test an idea about a group. Presets ship
with the package (:data:`PRESETS`); a TOML file defines a new one, including new policy types:
:data:`TEMPLATE_PATH` is a commented template of every key (the README shows it, and a test
loads it).
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import re
import sys
import tomllib
import unicodedata
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
import torch

from scai.models.errors import (
    HypothesisError,
    HypothesisWarning,
    ScaiError,
    StereotypeStrengthWarning,
    UnusedLapseWarning,
    check_path,
    not_a_regular_file,
    outside_scai,
    utf8_writable,
)
from scai.models.errors import show_value as _show
from scai.models.language import MANNERS, check_confusion, coupling_table, emission_table
from scai.models.policies import DEFAULT_POLICIES, PolicyType
from scai.models.writing import check_format_ending, write_atomic

_TOP_KEYS = {
    "name": str,
    "description": str,
    "rationality": float,
    "rationality_scale": float,
    "pi_concentration": (float, list),
    "stereotype_strength": float,
    "tone_fidelity": float,
    "reader_confusion": list,
    "policies": dict,
    "stereotype": dict,
    "currency": dict,
    "lapse": float,
    "lapse_prior": list,
    "stereotype_prior": list,
    "clone_prior": list,
}
_POLICY_KEYS = ("w", "alpha", "beta", "description", "responder", "norm")
_RESPONDER_KEYS = ("w", "alpha", "beta")
#: Group-level latents in (0, 1) with a Beta prior, by the hypothesis key of the prior.
BETA_PRIORS = ("lapse_prior", "stereotype_prior", "clone_prior")
_CURRENCY_KEYS = ("shared_scale", "currency_scale", "essential_shift")

#: A commented TOML template of every key, shipped with the package.
TEMPLATE_PATH = Path(__file__).with_name("hypothesis_template.toml")

# -- bounds -----------------------------------------------------------------------------------
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
_SCALARS = (
    "rationality",
    "rationality_scale",
    "stereotype_strength",
    "tone_fidelity",
    "shared_scale",
    "currency_scale",
    "essential_shift",
)
#: The most policy types a hypothesis may have. Every engine's cost grows with the number of
#: types K, the exact engine's simplex lattice of ``pi`` fastest: its enumeration visits
#: (n + 1)^(K - 1) compositions, 12 types take 11 s and 13 types 81 s, 20 never finish. At 12
#: its lattice already has steps of 1/5, and ultimatum-game offers and decisions cannot tell
#: that many social utilities apart.
MAX_POLICIES = 12
_WHY_K = "more types than the data can tell apart, and the exact engine's lattice explodes"
#: The longest hypothesis name (names become file names, e.g. posterior_<name>.nc).
MAX_NAME_LENGTH = 100


#: Names a policy may not have: the id columns of :meth:`Posterior.policy_table`.
RESERVED_POLICY_NAMES = ("sim", "user")


class ReadOnlyDict(dict):
    """A dict that refuses changes (a frozen hypothesis's stereotype table and its rows); it
    pickles and copies as the dict it holds. Another table: ``Hypothesis.with_(stereotype=...)``."""

    def _refuse(self, *args, **kwargs):
        raise TypeError(
            "a hypothesis's stereotype table is read-only; make another hypothesis with "
            "with_(stereotype=...)"
        )

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self):
        return type(self), (dict(self),)

    def __hash__(self) -> int:  # read-only: a hypothesis holding one can key a dict or a set
        return hash(frozenset(self.items()))


#: Cyrillic and Greek letters drawn like Latin ones (after case folding), by the Latin letter
#: they look like: Unicode's confusables for these alphabets' lower case, the few a name of
#: a type is likely to hold (the full table is thousands of entries across every script).
LATIN_LOOK_ALIKES = {
    **dict.fromkeys("аα", "a"),
    **dict.fromkeys("сϲ", "c"),
    "ԁ": "d",
    **dict.fromkeys("еε", "e"),
    "һ": "h",
    **dict.fromkeys("іι", "i"),
    "ј": "j",
    **dict.fromkeys("кκ", "k"),
    "η": "n",
    **dict.fromkeys("оο", "o"),
    **dict.fromkeys("рρ", "p"),
    "ԛ": "q",
    "ѕ": "s",
    **dict.fromkeys("тτ", "t"),
    "υ": "u",
    "ν": "v",
    **dict.fromkeys("хχ", "x"),
    **dict.fromkeys("уγ", "y"),
}
_LOOK_ALIKES = str.maketrans(LATIN_LOOK_ALIKES)


def look_alike_key(name: str) -> str:
    """What ``name`` looks like: case folded, in Unicode's compatibility forms (NFKC: a
    full-width letter is its letter) and with Cyrillic and Greek letters drawn like Latin ones
    as those (:data:`LATIN_LOOK_ALIKES`). Two names of one key read the same in a table."""
    return unicodedata.normalize("NFKC", name).casefold().translate(_LOOK_ALIKES)


#: The settings of a stereotype: whether a hypothesis's changes (``with_``) touch it.
STEREOTYPE_KEYS = frozenset({"stereotype", "stereotype_strength", "stereotype_prior"})


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
    lapse: float = 0.0
    lapse_prior: tuple[float, float] | None = None
    stereotype_prior: tuple[float, float] | None = None
    clone_prior: tuple[float, float] | None = None
    #: ``R[tone, t] = P(the tone reader reports t | the message's tone)`` over MANNERS x
    #: MANNERS (see :mod:`scai.models.tone_reader`); ``None``: tones are observed as given.
    reader_confusion: tuple[tuple[float, ...], ...] | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        if not isinstance(self.description, str) or not utf8_writable(self.description):
            raise HypothesisError(
                f"description: must be a string of Unicode characters (UTF-8 writes it), got "
                f"{_show(self.description)}"
            )
        if not isinstance(self.policies, tuple | list) or not all(
            isinstance(p, PolicyType) for p in self.policies
        ):
            raise HypothesisError(
                f"policies: must be a tuple of PolicyType, got {_show(self.policies)}"
            )
        names = self.policy_names
        if not 1 <= len(names) <= MAX_POLICIES:
            raise HypothesisError(
                f"policies: {len(names)} policy types; allowed: 1 to {MAX_POLICIES} ({_WHY_K})"
            )
        if len(set(names)) != len(names):
            raise HypothesisError(f"policies: names must be unique, got {list(names)}")
        # "ｓelfish" (a full-width s) or "fаir" (a Cyrillic а) beside "selfish" or "fair": two
        # types that no figure or table tells apart (a red-team find; a review)
        seen: dict[str, str] = {}
        for name in names:
            key = look_alike_key(name)
            if key in seen:
                raise HypothesisError(
                    f"policies: {seen[key]!r} and {name!r} look alike (the same letters but for "
                    "case, Unicode's compatibility forms or Cyrillic and Greek letters that look "
                    "Latin): name the types apart"
                )
            seen[key] = name
        if clash := [n for n in names if n in RESERVED_POLICY_NAMES]:
            raise HypothesisError(
                f"policies: {clash[0]!r} is the name of an id column of the users' type table "
                f"({', '.join(RESERVED_POLICY_NAMES)}); choose another name"
            )
        for p in self.policies:
            for key in ("w", "alpha", "beta"):
                _check_range(f"policies.{p.name}.{key}", getattr(p, key), key)
        # one number for every policy, as a file and with_ take it
        object.__setattr__(self, "pi_concentration", per_policy(self.pi_concentration, len(names)))
        if not isinstance(self.pi_concentration, tuple | list):
            raise HypothesisError(
                "pi_concentration: must be a tuple of numbers, one per policy, got "
                f"{_show(self.pi_concentration)}"
            )
        for key in ("policies", "pi_concentration"):  # a list given: equal to the tuple
            object.__setattr__(self, key, tuple(getattr(self, key)))
        if len(self.pi_concentration) != len(names):
            raise HypothesisError(
                f"pi_concentration: needs one value per policy ({len(names)}), "
                f"got {len(self.pi_concentration)}"
            )
        for i, value in enumerate(self.pi_concentration):
            _check_range(f"pi_concentration[{i}]", value, "pi_concentration")
        object.__setattr__(self, "pi_concentration", tuple(map(float, self.pi_concentration)))
        for key in (*_SCALARS, "lapse"):
            _check_range(key, getattr(self, key), key)
            # a whole number as its float: rationality = 1 and 1.0 are one hypothesis (its
            # TOML, a condition's cache key, a posterior's fixed rationality tensor)
            object.__setattr__(self, key, float(getattr(self, key)))
        for key in BETA_PRIORS:
            prior = getattr(self, key)
            if prior is None:
                continue
            if not isinstance(prior, tuple | list) or len(prior) != 2:
                raise HypothesisError(
                    f"{key}: must be two numbers [a, b] of a Beta(a, b) prior, got {_show(prior)}"
                )
            for i, value in enumerate(prior):
                _check_range(f"{key}[{i}]", value, "beta prior")
            object.__setattr__(self, key, (float(prior[0]), float(prior[1])))
        if self.lapse and self.lapse_prior is not None:  # a file's, with_'s or the caller's
            why = (
                f"lapse = {self.lapse} is not used: lapse_prior learns it (a Beta prior); drop "
                "lapse, or lapse_prior to keep it fixed"
            )
            warnings.warn(
                UnusedLapseWarning(why),
                stacklevel=outside_scai(also=(dataclasses.__file__, "<string>:__init__")),
            )
        if self.stereotype_strength and self.stereotype_prior is not None and self.stereotype:
            why = (  # (without a table, a file's or with_'s strength is told as inert)
                f"stereotype_strength = {self.stereotype_strength:g} is not used: "
                "stereotype_prior learns the strength (a Beta prior); drop stereotype_strength, "
                "or stereotype_prior to keep it fixed"
            )
            warnings.warn(
                StereotypeStrengthWarning(why),
                stacklevel=outside_scai(also=(dataclasses.__file__, "<string>:__init__")),
            )
        for p in self.policies:
            if p.norm and p.norm not in names:
                raise HypothesisError(
                    f"policies.{p.name}.norm: {p.norm!r} is not a policy; allowed: "
                    f"{', '.join(names)}"
                )
            if p.norm == p.name:  # (circular: a type without the key proposes by its own)
                raise HypothesisError(
                    f"policies.{p.name}.norm: {p.norm!r} is the type itself; name another type, "
                    "or leave out norm for a type that proposes by its own (w, alpha, beta)"
                )
            if p.norm:
                _check_role_variant(p, self.policies[names.index(p.norm)])
            for key, value in zip(_RESPONDER_KEYS, p.responder or (), strict=False):
                _check_range(f"policies.{p.name}.responder.{key}", value, key)
        if not isinstance(self.stereotype, dict):
            raise HypothesisError(
                f"stereotype: must be a table of manner weights per policy, got "
                f"{_show(self.stereotype)}"
            )
        for policy, row in self.stereotype.items():
            if policy not in names:
                raise HypothesisError(
                    f"stereotype.{policy}: unknown policy; allowed: {', '.join(names)}"
                )
            if not isinstance(row, dict):
                raise HypothesisError(
                    f"stereotype.{policy}: must be a table of manner weights, got {_show(row)}"
                )
            for manner, weight in row.items():
                if manner not in MANNERS:
                    raise HypothesisError(
                        f"stereotype.{policy}.{manner}: unknown manner; "
                        f"allowed: {', '.join(MANNERS)}"
                    )
                _check_range(f"stereotype.{policy}.{manner}", weight, "stereotype weight")
            if sum(row.values()) <= 0:
                raise HypothesisError(f"stereotype.{policy}: weights must not all be 0")
        # A read-only copy of its own: the table given (a preset's, another hypothesis's
        # through with_) stays the caller's, and no row of a hypothesis changes after it was
        # checked (a preset's, edited in place, changed every later fit of it in the process,
        # past the checks: a NaN weight was fitted without a word).
        table = {k: ReadOnlyDict(v) for k, v in self.stereotype.items()}
        object.__setattr__(self, "stereotype", ReadOnlyDict(table))
        if self.reader_confusion is not None:
            try:
                matrix = check_confusion(self.reader_confusion, "reader_confusion")
            except ValueError as err:
                raise HypothesisError(str(err)) from None
            object.__setattr__(self, "reader_confusion", matrix)  # lists (TOML) as tuples
        _warn_identical_types(self)  # last: a hypothesis refused says only why

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

    @property
    def lapse_is_latent(self) -> bool:
        return self.lapse_prior is not None

    @property
    def coupling_is_latent(self) -> bool:
        """Whether the stereotype's strength is learned per group (``stereotype_prior``)."""
        return self.stereotype_prior is not None

    @property
    def ties_manners_to_types(self) -> bool:
        """Whether a user's manner says anything of its type: a stereotype whose strength is
        positive or learned (without one, the coupling's rows are uniform)."""
        return bool(self.stereotype) and (
            self.stereotype_strength > 0 or self.stereotype_prior is not None
        )

    @property
    def clones(self) -> bool:
        """Whether users may copy a group prototype's type (``clone_prior``)."""
        return self.clone_prior is not None

    @property
    def norm_names(self) -> tuple[str, ...]:
        """The norm each type's proposals follow (its own name unless role-dependent)."""
        return tuple(p.proposes_as for p in self.policies)

    def coupling(self, strength: torch.Tensor | None = None) -> torch.Tensor:
        """``rho[k, m] = P(manner m | policy k)``: ``[K, M]`` at the fixed strength, or
        ``[..., K, M]`` at ``strength [...]`` (a coupling learned per group):
        ``rho = (1 - s) / M + s * stereotype rows``."""
        if strength is None:
            return coupling_table(self.policy_names, self.stereotype, self.stereotype_strength)
        rows = coupling_table(self.policy_names, self.stereotype, 1.0).to(strength.dtype)
        s = strength[..., None, None]
        return (1 - s) / rows.shape[-1] + s * rows

    def emission(self) -> torch.Tensor:
        """``E[m, t] = P(tone t | manner m)``; with a tone reader's confusion ``R``, the
        probability that the reader reports ``t``: ``(E @ R)[m, t] = sum_tone E[m, tone]
        R[tone, t]`` (every backend reads tones' probabilities here)."""
        emission = emission_table(self.tone_fidelity)
        if self.reader_confusion is None:
            return emission
        return emission @ torch.tensor(self.reader_confusion, dtype=emission.dtype)

    def with_(self, **changes: Any) -> Hypothesis:
        """A copy with some settings changed (validated again); an unknown setting is a
        :class:`HypothesisError` listing the settings (``replace``'s own ``TypeError`` did
        not). ``pi_concentration`` may be one number for every policy, as in a file."""
        known = [f.name for f in fields(self) if f.init]
        if unknown := [name for name in changes if name not in known]:
            raise HypothesisError(
                f"with_: unknown setting(s) {', '.join(map(repr, unknown))}; allowed: "
                + ", ".join(known)
            )
        policies = changes.get("policies", self.policies)
        resized = isinstance(policies, tuple | list) and len(policies) != len(self.policies)
        if resized and "pi_concentration" not in changes:  # the old prior's, for the new types
            if len(set(self.pi_concentration)) > 1:
                raise HypothesisError(
                    f"with_: policies: {len(policies)} policies where there were "
                    f"{len(self.policies)}, and pi_concentration {self.pi_concentration} "
                    "differs by policy: give pi_concentration for the new policies too"
                )
            changes["pi_concentration"] = self.pi_concentration[0]
        if "pi_concentration" in changes and isinstance(policies, tuple | list):
            changes["pi_concentration"] = per_policy(changes["pi_concentration"], len(policies))
        with warnings.catch_warnings(record=True) as told:  # to name with_ in them
            warnings.simplefilter("always", HypothesisWarning)
            changed = replace(self, **changes)
        told_before = ()  # (the ones this hypothesis warned of already: not again)
        if not {"lapse", "lapse_prior"} & set(changes):
            told_before += (UnusedLapseWarning,)
        if not STEREOTYPE_KEYS & set(changes):
            told_before += (StereotypeStrengthWarning,)
        _tell_again(told, "with_", skip=told_before)
        _warn_inert_stereotype(changes, changed, "with_")
        return changed

    # -- TOML ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "description": self.description,
            "rationality": self.rationality,
            "rationality_scale": self.rationality_scale,
            "pi_concentration": list(self.pi_concentration),
            "stereotype_strength": self.stereotype_strength,
            "tone_fidelity": self.tone_fidelity,
            "policies": {p.name: _policy_dict(p) for p in self.policies},
            "stereotype": {k: dict(v) for k, v in self.stereotype.items()},
            "currency": {
                "shared_scale": self.shared_scale,
                "currency_scale": self.currency_scale,
                "essential_shift": self.essential_shift,
            },
            "lapse": self.lapse,
            **{key: list(getattr(self, key)) for key in BETA_PRIORS if getattr(self, key)},
        }
        if self.reader_confusion is not None:
            out["reader_confusion"] = [list(row) for row in self.reader_confusion]
        return out

    def save(self, path: str | Path) -> None:
        """Write the hypothesis as a TOML file (what :meth:`load` reads), atomically; a folder
        or a symbolic link at ``path`` is a :class:`~scai.models.errors.RunError`, a name that
        says another format (``h.json``, ``h.toml.gz``) a :class:`HypothesisError`."""
        path = check_path(path, "Hypothesis.save", HypothesisError)
        check_format_ending(path, ".toml", "Hypothesis.save", HypothesisError)
        text = tomli_w.dumps(self.to_dict())
        write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "hypothesis") -> Hypothesis:
        if not isinstance(raw, dict):
            raise HypothesisError(f"{source}: expected a table of settings, got {_show(raw)}")
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
                    f"{source}: key {key!r} has value {_show(value)}; expected {_describe(key)}"
                )
        kwargs: dict[str, Any] = {}
        for key in ("name", "description", "rationality", "rationality_scale"):
            if key in raw:
                kwargs[key] = raw[key]
        for key in ("stereotype_strength", "tone_fidelity", "lapse"):
            if key in raw:
                kwargs[key] = _number(raw[key], f"{source}: {key}")
        for key in BETA_PRIORS:
            if key in raw:
                kwargs[key] = tuple(
                    _number(v, f"{source}: {key}[{i}]") for i, v in enumerate(raw[key])
                )
        if "reader_confusion" in raw:
            kwargs["reader_confusion"] = raw["reader_confusion"]
        if "policies" in raw:
            if not 1 <= len(raw["policies"]) <= MAX_POLICIES:
                raise HypothesisError(
                    f"{source}: policies: {len(raw['policies'])} policy types; allowed: 1 to "
                    f"{MAX_POLICIES} ({_WHY_K})"
                )
            policies = []
            for pname, spec in raw["policies"].items():
                if not isinstance(spec, dict):
                    raise HypothesisError(f"{source}: policies.{pname} must be a table")
                for k, v in spec.items():
                    if k not in _POLICY_KEYS:
                        raise HypothesisError(
                            f"{source}: policies.{pname}: unknown key {k!r}; "
                            f"allowed: {', '.join(_POLICY_KEYS)}"
                        )
                    if k == "description" and not isinstance(v, str):
                        raise HypothesisError(
                            f"{source}: policies.{pname}.description has value {_show(v)}; "
                            "expected a string"
                        )
                spec = dict(spec)
                # (a list is no key: PolicyType below names the bad norm)
                norm = spec.get("norm")
                base = raw["policies"].get(norm) if isinstance(norm, str) else None
                if isinstance(base, dict):  # a role variant proposes like its norm: by default
                    for key in ("w", "alpha", "beta"):  # the norm's proposer parameters
                        if key not in spec and key in base:
                            spec[key] = base[key]
                if "responder" in spec:
                    spec["responder"] = _responder(spec["responder"], f"{source}: policies.{pname}")
                try:
                    policies.append(PolicyType(name=pname, **spec))
                except (TypeError, ValueError) as err:
                    raise HypothesisError(f"{source}: policies.{pname}: {err}") from None
            kwargs["policies"] = tuple(policies)
        n_policies = len(kwargs.get("policies", DEFAULT_POLICIES))
        conc = raw.get("pi_concentration", 0.5)
        kwargs["pi_concentration"] = per_policy(
            [_number(c, f"{source}: pi_concentration[{i}]") for i, c in enumerate(conc)]
            if isinstance(conc, list)
            else _number(conc, f"{source}: pi_concentration"),
            n_policies,
        )
        if "stereotype" in raw:
            stereotype = {}
            for policy, row in raw["stereotype"].items():
                if not isinstance(row, dict):
                    raise HypothesisError(
                        f"{source}: stereotype.{policy} has value {_show(row)}; expected a "
                        "table of manner weights, e.g. [stereotype.selfish] rude = 1.0"
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
        with warnings.catch_warnings(record=True) as told:  # to name the source in them
            warnings.simplefilter("always", HypothesisWarning)
            try:
                hypothesis = cls(**kwargs)
            except HypothesisError as err:
                # the constructor names its argument; the file's key is in [currency]
                text = re.sub(rf"^({'|'.join(_CURRENCY_KEYS)}):", r"currency.\1:", str(err))
                raise HypothesisError(f"{source}: {text}") from None
        _tell_again(told, source)
        _warn_inert_stereotype(raw, hypothesis, source)
        return hypothesis

    @classmethod
    def load(cls, path: str | Path) -> Hypothesis:
        """A ``social_contract`` hypothesis file (read by the one loader,
        :func:`scai.models.hypothesis_files.load_hypothesis_file`)."""
        from scai.models.hypothesis_files import load_hypothesis_file

        path = check_path(path, "load", HypothesisError)
        return load_hypothesis_file(path, family="social_contract")


def _policy_dict(p: PolicyType) -> dict[str, Any]:
    out: dict[str, Any] = {"w": p.w, "alpha": p.alpha, "beta": p.beta, "description": p.description}
    if p.responder is not None:
        out["responder"] = dict(zip(_RESPONDER_KEYS, p.responder, strict=True))
    if p.norm:
        out["norm"] = p.norm
    return out


def _responder(table: Any, where: str) -> tuple[float, float, float]:
    """A ``responder = {w = ..., alpha = ..., beta = ...}`` table; missing keys are 0 (not the
    norm's: a responder is written whole, as the template says)."""
    if not isinstance(table, dict):
        raise HypothesisError(
            f"{where}.responder has value {_show(table)}; expected a table such as "
            "{ alpha = 0.5 } (keys w, alpha, beta)"
        )
    for key in table:
        if key not in _RESPONDER_KEYS:
            raise HypothesisError(
                f"{where}.responder: unknown key {key!r}; allowed: {', '.join(_RESPONDER_KEYS)}"
            )
    return tuple(_number(table.get(k, 0.0), f"{where}.responder.{k}") for k in _RESPONDER_KEYS)


def per_policy(concentration: Any, n_policies: int) -> Any:
    """``pi_concentration`` as every hypothesis holds it, a tuple of one value per policy: a
    list as a tuple, and one number as every policy's (a file's ``pi_concentration = 0.5``,
    ``with_(pi_concentration=0.5)``). Anything else is returned as it is, for the hypothesis's
    own checks to name."""
    if isinstance(concentration, list):
        return tuple(concentration)
    if isinstance(concentration, numbers.Real) and not isinstance(concentration, bool | np.bool_):
        if isinstance(concentration, numbers.Integral):  # a huge int: out of range, not inf
            concentration = min(concentration, 10**300)
        return (float(concentration),) * n_policies
    return concentration


def _number(value: Any, where: str) -> float:
    """``value`` as a float, or a :class:`HypothesisError` naming ``where`` it was found."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HypothesisError(f"{where} has value {_show(value)}; expected a number")
    try:
        return float(value)
    except OverflowError:
        raise HypothesisError(f"{where} has value {_show(value)}; too large a number") from None


def _check_range(key: str, value: Any, bound: str) -> None:
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


def _warn_identical_types(hypothesis: Hypothesis) -> None:
    """A :class:`HypothesisWarning` for types that act alike in both roles and, where manners
    are tied to types, have the same stereotype: no data can tell them apart, and their shares
    of ``pi`` split what one would hold."""
    seen: dict[tuple, str] = {}
    for p in hypothesis.policies:
        row = hypothesis.stereotype.get(p.name, {}) if hypothesis.ties_manners_to_types else {}
        total = sum(row.values()) or 1.0
        manners = tuple(sorted((m, v / total) for m, v in row.items() if v))
        acts = (p.w, p.alpha, p.beta, p.responder or (p.w, p.alpha, p.beta), manners)
        if acts in seen:
            warnings.warn(
                HypothesisWarning(
                    f"policies: {seen[acts]!r} and {p.name!r} have the same parameters in both "
                    "roles: no data can tell them apart (their shares of pi split one type's)"
                ),
                # the user's line: past the dataclass's __init__ and ``replace`` (``with_``)
                stacklevel=outside_scai(also=(dataclasses.__file__, "<string>:__init__")),
            )
        seen.setdefault(acts, p.name)


def _tell_again(
    records: list[warnings.WarningMessage], source: str, skip: tuple[type, ...] = ()
) -> None:
    """Warn again of ``records`` (caught while a hypothesis was built) at the caller's line,
    a :class:`HypothesisWarning` named by ``source``, those of a ``skip`` class left out: the
    caller's filters apply as they re-emerge."""
    for record in records:
        message = record.message
        if isinstance(message, skip):
            continue
        if isinstance(message, HypothesisWarning):
            message = type(message)(f"{source}: {message}")
        warnings.warn(message, stacklevel=outside_scai())


def _warn_inert_stereotype(given: Iterable[str], hypothesis: Hypothesis, source: str) -> None:
    """A :class:`StereotypeStrengthWarning` for a stereotype setting that changes nothing, where
    ``given`` names the settings the user gave (a file's keys, ``with_``'s changes): a
    ``[stereotype]`` table without ``stereotype_strength`` (its default, 0, ties no manner to a
    type) or ``stereotype_prior``, and a strength, fixed or learned (``stereotype_prior``: on a
    grid twelve times larger), without a ``[stereotype]`` table to mix in."""
    given = set(given)
    learned = hypothesis.stereotype_prior is not None
    unset = "stereotype_strength" not in given and not learned  # (a prior of None: unset)
    if "stereotype" in given and hypothesis.stereotype and unset:
        if hypothesis.stereotype_strength == 0:
            why = (
                "the [stereotype] table changes nothing: stereotype_strength is 0 by default; "
                "set it (e.g. 0.8), or stereotype_prior to learn it"
            )
            warnings.warn(StereotypeStrengthWarning(f"{source}: {why}"), stacklevel=outside_scai())
    elif hypothesis.stereotype:
        return
    elif learned and {"stereotype_prior", "stereotype"} & given:  # (it overrides a strength)
        why = (
            "stereotype_prior learns the strength of a stereotype, but there is no [stereotype] "
            "table: it changes nothing (and costs a grid of strengths)"
        )
        warnings.warn(StereotypeStrengthWarning(f"{source}: {why}"), stacklevel=outside_scai())
    elif hypothesis.stereotype_strength and {"stereotype_strength", "stereotype"} & given:
        why = (
            f"stereotype_strength = {hypothesis.stereotype_strength:g} changes nothing: there "
            "is no [stereotype] table (manner weights of a type) for it to mix in"
        )
        warnings.warn(StereotypeStrengthWarning(f"{source}: {why}"), stacklevel=outside_scai())


def _why(bound: str, value: float) -> str:
    if bound == "tone_fidelity":
        if value < 0.5:
            return "at 0 a manner's own tone gets probability 0, whose log is -inf"
        return "at 1 the other tones get probability 0, whose log is -inf"
    if bound == "stereotype_strength":
        return "a mixing weight"
    return "where the model's arithmetic stays finite in float32"


def check_name(name: Any) -> None:
    """A name becomes part of file names and of one-line messages: no path separators, ``..``,
    control characters or line breaks, no space at either end."""
    if not isinstance(name, str):
        raise HypothesisError(f"name: must be a string, got {_show(name)}")
    # (controls and format characters: category C; line and paragraph separators: Zl, Zp)
    bad = [c for c in name if c in "/\\\u2028\u2029" or unicodedata.category(c)[0] == "C"]
    if not 1 <= len(name) <= MAX_NAME_LENGTH or bad or ".." in name or name != name.strip():
        raise HypothesisError(
            f"name: {_show(name)} is not allowed: names become file names, so they need 1 to "
            f"{MAX_NAME_LENGTH} characters without path separators (/ or \\), '..', control "
            "characters, line breaks or spaces at either end"
        )


def read_toml(
    path: str | Path, error: type[ScaiError] = HypothesisError, what: str = "hypothesis file"
) -> dict[str, Any]:
    """A TOML file's table; an ``error`` naming the file (a ``what``) if it cannot be read
    (missing, a folder, not UTF-8, not TOML, nested too deeply, a number of more digits than
    Python reads). A byte-order mark, which editors on Windows write and TOML does not allow,
    is skipped as in a CSV."""
    path = Path(path)
    if why := not_a_regular_file(path):
        raise error(f"{path}: {why}; give a {what} (TOML)")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as err:
        raise error(f"{path}: not valid TOML: {err}") from None
    except UnicodeDecodeError as err:
        raise error(
            f"{path}: not UTF-8 text (byte {err.start} is {err.object[err.start]:#04x}); "
            "TOML files must be UTF-8"
        ) from None
    except RecursionError:
        raise error(f"{path}: not valid TOML: nested too deeply") from None
    except ValueError:  # a number of more digits than Python reads (4,300)
        raise error(
            f"{path}: a number of more than {sys.get_int_max_str_digits():,} digits, beyond any "
            "value a key allows"
        ) from None
    except OSError as err:
        raise error(f"{path}: cannot read the {what}: {err.strerror or err}") from None


def _describe(key: str) -> str:
    return {
        "name": "a string",
        "description": "a string",
        "pi_concentration": "a number > 0 or a list of them, one per policy",
        "policies": "a table of policy tables",
        "stereotype": "a table of manner weights per policy",
        "currency": "a table with shared_scale, currency_scale, essential_shift",
        "lapse_prior": "two numbers [a, b] of a Beta(a, b) prior",
        "stereotype_prior": "two numbers [a, b] of a Beta(a, b) prior",
        "clone_prior": "two numbers [a, b] of a Beta(a, b) prior",
        "reader_confusion": f"{len(MANNERS)} rows of {len(MANNERS)} numbers in [0, 1], each "
        f"summing to 1 (P(reported | tone); rows and columns: {', '.join(MANNERS)})",
    }.get(key, "a number")


_STEREOTYPE = {
    "selfish": {"rude": 1.0},
    "fair": {"neutral": 1.0},
    "altruistic": {"sycophantic": 0.5, "polite": 0.5},
}


def _check_role_variant(variant: PolicyType, norm: PolicyType) -> None:
    """A type with ``norm = "X"`` proposes like X: X must be a norm of its own (no chains, no
    cycles) and the type's proposer parameters must be X's (only its responder may differ)."""
    where = f"policies.{variant.name}.norm"
    if norm.norm:
        raise HypothesisError(
            f"{where}: {norm.name!r} follows the norm {norm.norm!r} itself; name a type "
            "without a norm key"
        )
    mine, theirs = (variant.w, variant.alpha, variant.beta), (norm.w, norm.alpha, norm.beta)
    if mine != theirs:
        raise HypothesisError(
            f"{where}: {variant.name!r} proposes by (w, alpha, beta) = {_triple(mine)} but its "
            f"norm {norm.name!r} by {_triple(theirs)}; a type proposes like its norm (leave out "
            "w, alpha and beta in a file to take the norm's; 'responder' sets how it "
            "responds, each of its keys left out 0)"
        )


def _triple(values: tuple[float, float, float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


#: Role-dependent norms of GPT-4 users in the original study's logs: "selfish" users keep all
#: but one unit as proposers and, with some manners, reject one-unit offers as responders.
_AGENT_POLICIES = (
    PolicyType("selfish", description="keeps all it can"),
    PolicyType(
        "selfish_rejecting",
        norm="selfish",
        responder=(0.0, 0.5, 0.0),
        description="proposes like selfish; as a responder rejects offers below a quarter",
    ),
    PolicyType("fair", alpha=2.0, beta=2.0, description="splits evenly"),
    PolicyType("altruistic", w=2.0, description="gives it away"),
)
#: For agents, a stereotype over the manners the original study's agents speak in (neutral,
#: rude, sycophantic): it says nothing about neutral manners (every row gives them half its
#: weight); rude suggests selfish, sycophantic altruistic, and a fair user is as likely rude
#: as sycophantic. No row favours polite, a manner no agent used and the tone reader was never
#: shown: a polite tone would be a sink that every reported tone could have come from.
_AGENT_STEREOTYPE = {
    "selfish": {"rude": 0.5, "neutral": 0.5},
    "selfish_rejecting": {"rude": 0.5, "neutral": 0.5},
    "fair": {"neutral": 0.5, "rude": 0.25, "sycophantic": 0.25},
    "altruistic": {"sycophantic": 0.5, "neutral": 0.5},
}
_AGENTS = {
    "policies": _AGENT_POLICIES,
    "pi_concentration": (0.5,) * len(_AGENT_POLICIES),
    "lapse_prior": (1.0, 30.0),
    # Agents prompted alike are near-copies (in the shared logs an epoch's 8 user-user games
    # are identical): a prior that a group's members usually share their type, still learned.
    "clone_prior": (3.0, 1.0),
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
            name="real_agents",
            description="For real agents (the original study's GPT-4 users): role-dependent "
            "norms (a selfish type that rejects small offers), lapses ~ Beta(1, 30) per group, "
            "and users that copy a prototype's type with probability c ~ Beta(3, 1) (agents "
            "prompted alike are near-copies). No stereotype.",
            **_AGENTS,
        ),
        Hypothesis(
            name="real_agents_stereotyped",
            description="real_agents with a stereotype over the agents' manners (rude with "
            "selfish, sycophantic with altruistic, neutral with any; fair as likely rude as "
            "sycophantic) whose strength is learned per group, s ~ Beta(4, 1) (mean 0.8): a "
            "group whose manners contradict it unlearns it.",
            stereotype=_AGENT_STEREOTYPE,
            stereotype_prior=(4.0, 1.0),
            **_AGENTS,
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


def is_hypothesis_file(name_or_path: str | Path) -> bool:
    """Whether a hypothesis given by name names a TOML file (``.toml``, in any case) rather
    than a preset."""
    return str(name_or_path).lower().endswith(".toml")


def get_hypothesis(name_or_path: str | Path | Hypothesis) -> Hypothesis:
    """A preset by name, a :class:`Hypothesis` as is, or one loaded from a ``.toml`` file."""
    if isinstance(name_or_path, Hypothesis):
        return name_or_path
    if not isinstance(name_or_path, str | os.PathLike):  # (3 was "unknown hypothesis '3'")
        raise HypothesisError(
            f"hypothesis: got {type(name_or_path).__name__} {name_or_path!r}; give a Hypothesis, "
            f"a preset's name ({', '.join(PRESETS)}) or a path to a .toml file"
        )
    text = os.fspath(name_or_path) if isinstance(name_or_path, os.PathLike) else name_or_path
    if text in PRESETS:
        return PRESETS[text]
    if is_hypothesis_file(text):
        return Hypothesis.load(text)
    raise HypothesisError(
        f"unknown hypothesis {_show(text, 80)}; allowed: {', '.join(PRESETS)} or a path to a "
        ".toml file"
    )
