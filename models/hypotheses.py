"""Hypotheses: every prior and fixed setting of the generative model, as data; this module
is their registry and their public home.

A :class:`Hypothesis` is what a researcher swaps to test an idea about a group. Presets ship
with the package (:data:`PRESETS`, the registry; :func:`get_hypothesis` takes a preset's name,
a ``.toml`` file's path or a hypothesis); a TOML file defines a new one, including new policy
types: :data:`TEMPLATE_PATH` is a commented template of every key (the README shows it, and a
test loads it).

What scai and its users import of hypotheses is here (``__all__``), defined in the modules
behind it, one job each:

* :mod:`~scai.models.hypothesis_spec`: the :class:`Hypothesis` dataclass, its checks and the
  quantities derived from it;
* :mod:`~scai.models.hypothesis_names`: the rules of hypothesis and policy-type names;
* :mod:`~scai.models.hypothesis_bounds`: the bounds of its settings and their checks;
* :mod:`~scai.models.hypothesis_toml`: its TOML form (keys, reading, writing);
* :mod:`~scai.models.hypothesis_warnings`: the warnings a hypothesis gives;
* :mod:`~scai.models.hypothesis_files`: the one loader of hypothesis files, of every family.
"""

from __future__ import annotations

import os
from pathlib import Path

from scai.models.errors import HypothesisError
from scai.models.errors import show_value as _show
from scai.models.hypothesis_bounds import BOUNDS, MAX_POLICIES, MIN_SCALE
from scai.models.hypothesis_names import (
    LATIN_LOOK_ALIKES,
    MAX_NAME_LENGTH,
    RESERVED_POLICY_NAMES,
    check_name,
    look_alike_key,
)
from scai.models.hypothesis_spec import STEREOTYPE_KEYS, Hypothesis, ReadOnlyDict
from scai.models.hypothesis_toml import BETA_PRIORS, TEMPLATE_PATH, per_policy, read_toml
from scai.models.policies import PolicyType

__all__ = [
    "BETA_PRIORS",
    "BOUNDS",
    "LATIN_LOOK_ALIKES",
    "MAX_NAME_LENGTH",
    "MAX_POLICIES",
    "MIN_SCALE",
    "PRESETS",
    "RESERVED_POLICY_NAMES",
    "STEREOTYPE_KEYS",
    "TEMPLATE_PATH",
    "Hypothesis",
    "HypothesisError",
    "ReadOnlyDict",
    "check_name",
    "get_hypothesis",
    "is_hypothesis_file",
    "look_alike_key",
    "per_policy",
    "read_toml",
]

_STEREOTYPE = {
    "selfish": {"rude": 1.0},
    "fair": {"neutral": 1.0},
    "altruistic": {"sycophantic": 0.5, "polite": 0.5},
}


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
