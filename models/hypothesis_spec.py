"""The :class:`Hypothesis`: every prior and fixed setting of the social-contract model, as a
frozen dataclass that checks its settings when it is made (and again when changed, ``with_``),
and the quantities derived from them (the coupling of manners to types, the tones' emission).

Its names, bounds, TOML form and warnings have modules of their own (``hypothesis_names``,
``hypothesis_bounds``, ``hypothesis_toml``, ``hypothesis_warnings``); the presets and
:func:`~scai.models.hypotheses.get_hypothesis` are in :mod:`scai.models.hypotheses`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from scai.models.errors import (
    HypothesisError,
    HypothesisWarning,
    StereotypeStrengthWarning,
    UnusedLapseWarning,
    check_path,
    utf8_writable,
)
from scai.models.errors import show_value as _show
from scai.models.hypothesis_bounds import check_policy_count, check_range
from scai.models.hypothesis_names import check_name, check_policy_names
from scai.models.hypothesis_toml import (
    BETA_PRIORS,
    RESPONDER_KEYS,
    from_table,
    per_policy,
    save_toml,
    to_table,
)
from scai.models.hypothesis_warnings import (
    tell_again,
    warn_identical_types,
    warn_inert_stereotype,
    warn_unused_fixed_values,
)
from scai.models.language import MANNERS, check_confusion, coupling_table, emission_table
from scai.models.policies import DEFAULT_POLICIES, PolicyType

_SCALARS = (
    "rationality",
    "rationality_scale",
    "stereotype_strength",
    "tone_fidelity",
    "shared_scale",
    "currency_scale",
    "essential_shift",
)


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
        check_policy_count(len(names))
        check_policy_names(names)
        for p in self.policies:
            for key in ("w", "alpha", "beta"):
                check_range(f"policies.{p.name}.{key}", getattr(p, key), key)
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
            check_range(f"pi_concentration[{i}]", value, "pi_concentration")
        object.__setattr__(self, "pi_concentration", tuple(map(float, self.pi_concentration)))
        for key in (*_SCALARS, "lapse"):
            check_range(key, getattr(self, key), key)
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
                check_range(f"{key}[{i}]", value, "beta prior")
            object.__setattr__(self, key, (float(prior[0]), float(prior[1])))
        warn_unused_fixed_values(self)
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
            for key, value in zip(RESPONDER_KEYS, p.responder or (), strict=False):
                check_range(f"policies.{p.name}.responder.{key}", value, key)
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
                check_range(f"stereotype.{policy}.{manner}", weight, "stereotype weight")
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
        warn_identical_types(self)  # last: a hypothesis refused says only why

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
        tell_again(told, "with_", skip=told_before)
        warn_inert_stereotype(changes, changed, "with_")
        return changed

    # -- TOML ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The hypothesis as a hypothesis file's table
        (:func:`~scai.models.hypothesis_toml.to_table`)."""
        return to_table(self)

    def save(self, path: str | Path) -> None:
        """Write the hypothesis as a TOML file (what :meth:`load` reads), atomically; a folder
        or a symbolic link at ``path`` is a :class:`~scai.models.errors.RunError`, a name that
        says another format (``h.json``, ``h.toml.gz``) a :class:`HypothesisError`."""
        save_toml(self, path)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "hypothesis") -> Hypothesis:
        """The hypothesis of a hypothesis file's table, every error naming ``source``
        (:func:`~scai.models.hypothesis_toml.from_table`)."""
        return from_table(cls, raw, source)

    @classmethod
    def load(cls, path: str | Path) -> Hypothesis:
        """A ``social_contract`` hypothesis file (read by the one loader,
        :func:`scai.models.hypothesis_files.load_hypothesis_file`)."""
        from scai.models.hypothesis_files import load_hypothesis_file

        path = check_path(path, "load", HypothesisError)
        return load_hypothesis_file(path, family="social_contract")


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
