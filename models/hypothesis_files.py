"""Hypothesis files: one TOML loader for every model family.

A hypothesis file is one TOML table. Its ``model`` key names the family, and so the spec it
is read into (``social_contract`` when absent); every other key is that spec's (its
parameters, their bounds and the data it models are the family's, in :data:`FAMILIES`)::

    model = "inequity_aversion"      # or "social_contract" (the default)
    name = "human_inequity"          # default: the file's stem
    envy_mu_loc = -1.0
    ...

:func:`load_hypothesis_file` reads a file once and dispatches on ``model``; every error is a
:class:`~scai.models.errors.HypothesisError` naming the file (and the key, for a bad
value). ``Hypothesis.load`` reads ``social_contract`` files through it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scai.models.errors import HypothesisError, HypothesisWarning, outside_scai
from scai.models.hypothesis_names import check_name
from scai.models.hypothesis_spec import Hypothesis
from scai.models.hypothesis_toml import read_toml
from scai.models.responders.specs import InequitySpec


@dataclass(frozen=True)
class HypothesisFamily:
    """A model family a hypothesis file can name: the spec its keys are read into
    (``from_dict(raw, source=...)``), the data it models and where the model comes from."""

    model: str
    from_dict: Callable[..., Any]
    data: str
    citation: str


#: The registry of model families: the one place a file's ``model`` value is defined.
FAMILIES: dict[str, HypothesisFamily] = {
    f.model: f
    for f in (
        HypothesisFamily(
            model="social_contract",
            from_dict=Hypothesis.from_dict,
            data="interaction table: sim, epoch, round, proposer, responder, currency, pot, "
            "offer, accepted, proposer_tone, responder_tone (its policies are also the named "
            "norms of the human-data norm mixture: responder, pot, offer, accepted, role)",
            citation="Fränken et al. (2023), Social Contract AI: Aligning AI Assistants with "
            "Implicit Group Norms",
        ),
        HypothesisFamily(
            model="inequity_aversion",
            from_dict=InequitySpec.from_dict,
            data="responder decisions: responder (subject), role, pot, offer, accepted",
            citation="Fehr & Schmidt (1999), A Theory of Fairness, Competition, and "
            "Cooperation, Quarterly Journal of Economics 114(3)",
        ),
    )
}
DEFAULT_FAMILY = "social_contract"


def load_hypothesis_file(path: str | Path, family: str | None = None) -> Any:
    """The hypothesis a TOML file defines, as its family's spec (a
    :class:`~scai.models.hypotheses.Hypothesis` or an
    :class:`~scai.models.responders.specs.InequitySpec`). ``family`` requires one family
    (a file naming another is an error)."""
    path = Path(path)
    raw = read_toml(path)
    named = "model" in raw
    model = raw.pop("model", DEFAULT_FAMILY)
    if not isinstance(model, str) or model not in FAMILIES:
        raise HypothesisError(
            f"{path}: key 'model' has value {model!r}; allowed: {', '.join(FAMILIES)}"
        )
    if family is not None and model != family:
        raise HypothesisError(
            f"{path}: key 'model' has value {model!r}; a {family!r} hypothesis is needed here"
        )
    if not raw:  # (an empty, cut or comment-only file reads as the defaults: say so)
        warnings.warn(
            f"{path}: the file sets no key{' but model' if named else ''}, so it is the "
            f"{model!r} family's defaults"
            + (" (the neutral preset's)" if model == DEFAULT_FAMILY else "")
            + f", named {path.stem!r}; if it was to set something, it was read empty (every "
            "line a comment, or cut)",
            HypothesisWarning,
            stacklevel=outside_scai(),
        )
    if "name" not in raw:  # the file's stem: where it is no name, say it came from there
        try:
            check_name(path.stem)
        except HypothesisError as err:
            raise HypothesisError(
                f"{path}: the file sets no 'name', so its name is the file's: {err}; add a "
                'line such as name = "my_hypothesis" or rename the file'
            ) from None
        raw["name"] = path.stem
    policies, counted = raw.get("policies"), isinstance(raw.get("pi_concentration"), list)
    hypothesis = FAMILIES[model].from_dict(raw, source=str(path))
    if (
        model == DEFAULT_FAMILY
        and isinstance(policies, dict)
        and len(policies) == 1
        and not counted
    ):
        # "a new type is one TOML table" read as "add one table": it replaces the default
        # three, leaving a one-type hypothesis whose pi is 1 (a fit then learns no norm). Not
        # where pi_concentration lists one number per type: the author counted one type (and
        # Hypothesis.save writes that list: a one-type hypothesis saved was told on loading)
        (only,) = policies
        warnings.warn(
            f"{path}: policies: the file defines one type, {only!r}, and a [policies] table "
            "replaces the default three (selfish, fair, altruistic): pi is 1, so a fit learns "
            "no mixture of norms; to add a type to others, list them beside it (as "
            "models/hypothesis_template.toml does)",
            HypothesisWarning,
            stacklevel=outside_scai(),
        )
    return hypothesis
