"""Responder-only models of people in the ultimatum game: two hypotheses about who rejects.

People in the human data only *respond*: subject ``s`` with role ``r = r(s)`` (``self``: the
responder; ``other``: an unaffected third party deciding whether to punish the proposer) sees
offers ``o`` of a pot ``N`` and rejects (punishes) or accepts. Utilities are in units of the pot
(cents in Study 1), as everywhere in :mod:`scai.models.policies`, so that a hypothesis's
``rationality`` means the same thing here as in the simulations (log-odds per unit); with the
100-cent pot of Study 1 this choice only rescales ``lam``. Both models share the decision rule
and noise model, and differ only in the norms::

    lam_r   ~ LogNormal(log lam0, sigma_lam)      median rationality of role r (lam0 if fixed)
    tau_r   ~ HalfNormal(tau_scale)               spread of rationality across subjects
    eps_r   ~ Beta(a_eps, b_eps)                  lapse: a decision made at random
    rho_r   ~ Beta(a_rho, b_rho)                  share of inattentive subjects
    lam_s   = lam_r exp(tau_r zeta_s),  zeta_s ~ Normal(0, 1)
    a_s     ~ Bernoulli(rho_r)                    1: subject s answers every trial at random
    P(reject o | U) = 1/2                                         if a_s = 1
                    = eps_r / 2 + (1 - eps_r) sigmoid(-lam_s U)   otherwise

Every role has its own parameters (a ``role`` plate), so one fit answers whether responders
and third-party punishers enforce the same norm.

**Norm mixture** (:func:`norm_mixture_model`; priors from a :class:`NormMixtureSpec`: a
:class:`~scai.models.hypotheses.Hypothesis`, e.g. ``experiments/hypotheses/human_norms.toml``, plus
the noise priors). Each subject follows one of ``K`` named norms, the social utilities
``U_k(x, y) = x + w_k y - alpha_k max(y - x, 0) - beta_k max(x - y, 0)``::

    pi_r ~ Dirichlet(a);   z_s ~ Categorical(pi_r(s));   U = U_{z_s}(o, N - o)

**Inequity aversion** (:func:`inequity_model`; priors from an :class:`InequitySpec`, e.g.
``experiments/hypotheses/human_inequity.toml``): a continuous Fehr-Schmidt envy per subject
(guilt never matters to a responder offered at most half the pot)::

    mu_r ~ Normal(mu_loc, mu_scale);   sigma_r ~ HalfNormal(sigma_scale)
    alpha_s ~ LogNormal(mu_r(s), sigma_r(s));   U = o - alpha_s max(N - 2 o, 0)

A subject with envy ``alpha`` rejects offers below the threshold share
``x* = alpha / (1 + 2 alpha)`` of the pot.

**Inference** runs on :func:`marginal_model`, which sums each subject's latent state out:
``log p(y_s | theta) = logsumexp_m [log P(m | r) + sum_t log P(y_st | m)]`` over the states
``m``: (norm ``k`` or envy bin ``g``) x (rationality node ``h``), plus ``inattentive``. The norm
sum is exact; the envy integral uses ``G`` bins equally spaced in the threshold share ``x*``
(each with its exact LogNormal probability, the end bins holding the tails; see
:func:`envy_grid`), and the rationality integral Gauss-Hermite quadrature on ``H`` nodes.
Three reasons: NUTS moves in a dozen dimensions (fast, no funnel); the per-subject
log-likelihood used for PSIS-LOO is then the *leave-one-subject-out* predictive density of a
new subject's decisions (a per-subject parameter would make every Pareto k large); and both
hypotheses are compared on the same footing. Each subject's state is drawn per posterior draw
from its exact conditional posterior (:func:`subject_posterior`). Tests check the marginal
against the explicit models: exactly against Pyro's enumeration for the norms, and against a
fine numerical integral for the envy.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import torch
from pyro.ops.indexing import Vindex

from scai.models.hypotheses import Hypothesis, HypothesisError, get_hypothesis
from scai.models.policies import policy_parameters, utility

DTYPE = torch.float64
ENUM = {"enumerate": "parallel"}
MAX_PLATE_NESTING = 2
#: Study 1's roles, in display order, and what they mean.
ROLE_NAMES = {"self": "responder", "other": "third-party punisher"}


# -- data ---------------------------------------------------------------------------------------
@dataclass
class ResponderData:
    """Decisions of ``S`` subjects, each with one role, as tensors.

    A *cell* is a distinct ``(pot, offer)``; ``n_reject[s, c]`` and ``n_trials[s, c]`` count
    subject ``s``'s rejections and decisions in cell ``c`` (the sufficient statistics of the
    marginal models). The explicit models read the decisions themselves, padded to
    ``[S, T]``: ``cell``, ``rejected`` and ``mask`` (``T``: most decisions of a subject).
    """

    subjects: tuple[str, ...]
    roles: tuple[str, ...]
    role_index: torch.Tensor  # [S] long
    pots: torch.Tensor  # [C]
    offers: torch.Tensor  # [C]
    n_reject: torch.Tensor  # [S, C]
    n_trials: torch.Tensor  # [S, C]
    cell: torch.Tensor  # [S, T] long
    rejected: torch.Tensor  # [S, T]
    mask: torch.Tensor  # [S, T] bool

    @classmethod
    def from_table(cls, table: pd.DataFrame, roles: dict[str, str] | None = None) -> ResponderData:
        """From an interaction table of responder decisions (``responder``, ``pot``, ``offer``,
        ``accepted``; the role of a subject is ``roles[subject]``, else its row's ``sim``)."""
        if len(table) == 0:
            raise ValueError("no decisions to model")
        subject = table["responder"].astype(str).to_numpy()
        role_of = dict(roles) if roles is not None else {}
        for s, sim in zip(subject, table["sim"].astype(str), strict=True):
            role_of.setdefault(s, sim)
        seen = list(dict.fromkeys(role_of[s] for s in subject))
        order = [r for r in ROLE_NAMES if r in seen] + [r for r in seen if r not in ROLE_NAMES]
        first = list(dict.fromkeys(subject))
        subjects = sorted(first, key=lambda s: order.index(role_of[s]))  # stable within a role
        s_index = {s: i for i, s in enumerate(subjects)}
        cells = sorted(set(zip(table["pot"].astype(int), table["offer"].astype(int), strict=True)))
        c_index = {c: i for i, c in enumerate(cells)}
        srow = np.array([s_index[s] for s in subject])
        crow = np.array(
            [c_index[c] for c in zip(table["pot"].astype(int), table["offer"], strict=True)]
        )
        rej = 1.0 - table["accepted"].to_numpy(dtype=float)
        S, C = len(subjects), len(cells)
        n_reject = np.zeros((S, C))
        n_trials = np.zeros((S, C))
        np.add.at(n_reject, (srow, crow), rej)
        np.add.at(n_trials, (srow, crow), 1.0)
        per_subject = np.bincount(srow, minlength=S)
        T = int(per_subject.max())
        slot = np.zeros(len(srow), dtype=int)
        counter = np.zeros(S, dtype=int)
        for i, s in enumerate(srow):
            slot[i] = counter[s]
            counter[s] += 1
        cell = np.zeros((S, T), dtype=np.int64)
        rejected = np.zeros((S, T))
        mask = np.zeros((S, T), dtype=bool)
        cell[srow, slot] = crow
        rejected[srow, slot] = rej
        mask[srow, slot] = True
        return cls(
            subjects=tuple(subjects),
            roles=tuple(order),
            role_index=torch.tensor([order.index(role_of[s]) for s in subjects]),
            pots=torch.tensor([c[0] for c in cells], dtype=DTYPE),
            offers=torch.tensor([c[1] for c in cells], dtype=DTYPE),
            n_reject=torch.as_tensor(n_reject, dtype=DTYPE),
            n_trials=torch.as_tensor(n_trials, dtype=DTYPE),
            cell=torch.as_tensor(cell),
            rejected=torch.as_tensor(rejected, dtype=DTYPE),
            mask=torch.as_tensor(mask),
        )

    @property
    def n_subjects(self) -> int:
        return len(self.subjects)

    @property
    def n_roles(self) -> int:
        return len(self.roles)

    @property
    def shares(self) -> torch.Tensor:
        """Offer share ``o / N`` of each cell."""
        return self.offers / self.pots

    @cached_property
    def role_slices(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of each role's subjects (subjects are sorted by role)."""
        counts = torch.bincount(self.role_index, minlength=self.n_roles).tolist()
        ends = np.cumsum(counts).tolist()
        return [(e - c, e) for c, e in zip(counts, ends, strict=True)]

    @cached_property
    def compressed(self) -> tuple[ResponderData, torch.Tensor, torch.Tensor]:
        """Subjects with identical roles and counts share a likelihood: ``(patterns, weight,
        inverse)``, where ``patterns`` holds each distinct ``(role, n_reject, n_trials)`` once
        (as a "subject"), ``weight[p]`` counts the subjects with pattern ``p`` and
        ``inverse[s]`` is subject ``s``'s pattern. Study 1: 364 subjects, 96 patterns."""
        key = torch.cat([self.role_index[:, None].to(DTYPE), self.n_reject, self.n_trials], 1)
        unique, inverse, weight = torch.unique(
            key, dim=0, return_inverse=True, return_counts=True
        )  # sorted lexicographically: by role first, as role_slices needs
        P = unique.shape[0]
        C = self.n_reject.shape[1]
        patterns = ResponderData(
            subjects=tuple(f"pattern{p}" for p in range(P)),
            roles=self.roles,
            role_index=unique[:, 0].long(),
            pots=self.pots,
            offers=self.offers,
            n_reject=unique[:, 1 : 1 + C],
            n_trials=unique[:, 1 + C :],
            cell=torch.zeros((P, 0), dtype=torch.long),
            rejected=torch.zeros((P, 0), dtype=DTYPE),
            mask=torch.zeros((P, 0), dtype=torch.bool),
        )
        return patterns, weight.to(DTYPE), inverse

    def subject_roles(self) -> list[str]:
        return [self.roles[i] for i in self.role_index.tolist()]


# -- specs (priors as data) ------------------------------------------------------------------
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
        return {
            **self.hypothesis.to_dict(),
            "lapse": [self.lapse.a, self.lapse.b],
            "inattentive": [self.inattentive.a, self.inattentive.b],
            "rationality_spread_scale": self.rationality_spread_scale,
            "rationality_nodes": self.rationality_nodes,
        }


_INEQUITY_KEYS: dict[str, str] = {
    "model": "the string 'inequity_aversion'",
    "name": "a string",
    "description": "a string",
    "envy_mu_loc": "a finite number (prior mean of the log median envy mu_r)",
    "envy_mu_scale": "a number > 0 (prior sd of mu_r)",
    "envy_sigma_scale": "a number > 0 (HalfNormal scale of sigma_r, the spread of log envy)",
    "rationality": "a number > 0 (median lam, log-odds per unit of the pot)",
    "rationality_scale": "a number >= 0 (LogNormal scale of lam; 0 fixes lam)",
    "rationality_spread_scale": "a number >= 0 (HalfNormal scale of tau_r, the spread of "
    "log lam_s across subjects; 0: every subject of a role has lam_r)",
    "rationality_nodes": "a whole number from 1 to 41 (Gauss-Hermite nodes of the lam_s integral)",
    "lapse_a": "a number >= 0 (Beta prior of the lapse rate; 0 switches it off)",
    "lapse_b": "a number > 0",
    "inattentive_a": "a number >= 0 (Beta prior of the inattentive share; 0 switches it off)",
    "inattentive_b": "a number > 0",
    "envy_min": "a number > 0 (lowest envy of the integration grid)",
    "envy_max": "a number > envy_min (highest envy of the integration grid)",
    "envy_bins": "a whole number >= 20 (bins of the envy integral)",
}


@dataclass(frozen=True)
class InequitySpec:
    """Priors of the inequity-aversion hypothesis (see the module docstring). TOML keys are the
    field names, plus ``model = "inequity_aversion"`` (see
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
                f"{key}: got {getattr(self, key)!r}; expected {_INEQUITY_KEYS[key]}"
            )

        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("name", "description"):
                if not isinstance(value, str):
                    raise bad(f.name)
            elif (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise bad(f.name)
        for key in ("envy_mu_scale", "envy_sigma_scale", "rationality", "envy_min"):
            if getattr(self, key) <= 0:
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
        if not float(self.envy_bins).is_integer() or self.envy_bins < 20:
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
            if key not in _INEQUITY_KEYS:
                raise HypothesisError(
                    f"{source}: unknown key {key!r}; allowed: {', '.join(_INEQUITY_KEYS)}"
                )
            if key == "model" and value != "inequity_aversion":
                raise HypothesisError(
                    f"{source}: key 'model' has value {value!r}; expected {_INEQUITY_KEYS['model']}"
                )
        try:
            return cls(**{k: v for k, v in raw.items() if k != "model"})
        except HypothesisError as err:
            raise HypothesisError(f"{source}: {err}") from None

    @classmethod
    def load(cls, path: str | Path) -> InequitySpec:
        """Read a TOML file (its name defaults to the file's stem)."""
        path = Path(path)
        raw = _read_toml(path)
        raw.setdefault("name", path.stem)
        return cls.from_dict(raw, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.kind, **{f.name: getattr(self, f.name) for f in fields(self)}}


Spec = NormMixtureSpec | InequitySpec


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise HypothesisError(f"{path}: not valid TOML: {err}") from None
    except OSError as err:
        raise HypothesisError(f"{path}: cannot read hypothesis file: {err}") from None


def load_responder_spec(source: str | Path | Hypothesis) -> Spec:
    """A responder hypothesis: an :class:`InequitySpec` from a TOML file that says
    ``model = "inequity_aversion"``, else a :class:`NormMixtureSpec` over the policies of the
    :class:`~scai.models.hypotheses.Hypothesis` that ``source`` names (a TOML file or a preset),
    with the default noise priors."""
    if isinstance(source, str | Path) and str(source).endswith(".toml"):
        path = Path(source)
        raw = _read_toml(path)
        if "model" in raw:
            raw.setdefault("name", path.stem)
            return InequitySpec.from_dict(raw, source=str(path))
    return NormMixtureSpec(get_hypothesis(source))


# -- the decision rule ------------------------------------------------------------------------
def reject_logprob(
    lam: torch.Tensor, u: torch.Tensor, eps: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log P(reject), log P(accept))`` for utility ``u`` with
    ``P(reject) = eps / 2 + (1 - eps) sigmoid(-lam u)`` (``eps=None``: no lapse)."""
    x = lam * u
    log_rej, log_acc = torch.nn.functional.logsigmoid(-x), torch.nn.functional.logsigmoid(x)
    if eps is None:
        return log_rej, log_acc
    log_keep, log_half = torch.log1p(-eps), torch.log(eps / 2)
    return (
        torch.logaddexp(log_keep + log_rej, log_half),
        torch.logaddexp(log_keep + log_acc, log_half),
    )


def cell_loglik(log_rej: torch.Tensor, log_acc: torch.Tensor, data: ResponderData) -> torch.Tensor:
    """``L[..., s, m] = sum_c n_reject[s, c] log_rej[..., r(s), m, c]
    + (n_trials - n_reject)[s, c] log_acc[..., r(s), m, c]`` from ``[..., R, M, C]`` tables
    (subjects are sorted by role, so this is one small matrix product per role)."""
    n_acc = data.n_trials - data.n_reject
    blocks = []
    for r, (start, stop) in enumerate(data.role_slices):
        blocks.append(
            data.n_reject[start:stop] @ log_rej[..., r, :, :].transpose(-1, -2)
            + n_acc[start:stop] @ log_acc[..., r, :, :].transpose(-1, -2)
        )
    return torch.cat(blocks, dim=-2)


def norm_utilities(spec: NormMixtureSpec, data: ResponderData) -> torch.Tensor:
    """``U[k, c] = U_k(o_c, N_c - o_c)`` of every norm in every cell."""
    w, alpha, beta = (t.to(DTYPE)[:, None] for t in policy_parameters(spec.hypothesis.policies))
    return utility(data.offers, data.pots - data.offers, w, alpha, beta)


def envy_grid(spec: InequitySpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The envy integral's grid: ``G`` bins equally spaced in the *threshold share*
    ``x* = alpha / (1 + 2 alpha)`` (the offer share below which a subject with envy ``alpha``
    rejects) between the thresholds of ``envy_min`` and ``envy_max``: offers are equally
    spaced shares, so every gap between two offers gets the same number of bins and no bin is
    spent where the data cannot tell envies apart. Returns the bins' midpoints (in ``x*``) as
    ``log alpha`` ``[G]`` and their inner edges as ``log alpha`` ``[G - 1]`` (the outer edges
    are 0 and infinity: the end bins hold the tails)."""
    G = int(spec.envy_bins)

    def share(alpha: float) -> float:
        return alpha / (1 + 2 * alpha)

    x = torch.linspace(share(spec.envy_min), share(spec.envy_max), G + 1, dtype=DTYPE)
    mid = (x[:-1] + x[1:]) / 2

    def log_alpha(t: torch.Tensor) -> torch.Tensor:
        return torch.log(t / (1 - 2 * t))

    return log_alpha(mid), log_alpha(x[1:-1])


def envy_log_weights(mu: torch.Tensor, sigma: torch.Tensor, spec: InequitySpec) -> torch.Tensor:
    """``log w_g = log P(log alpha in bin g)`` under ``Normal(mu, sigma)``: ``[..., G]``."""
    _, inner = envy_grid(spec)
    cdf = torch.special.ndtr((inner - mu[..., None]) / sigma[..., None])
    zeros, ones = torch.zeros_like(cdf[..., :1]), torch.ones_like(cdf[..., :1])
    mass = torch.diff(torch.cat([zeros, cdf, ones], dim=-1), dim=-1)
    return torch.log(mass.clamp_min(1e-300))


def envy_utility(alpha: torch.Tensor, data: ResponderData) -> torch.Tensor:
    """``U = o - alpha max(N - 2 o, 0)`` for envy ``alpha [..., 1]`` in every cell: ``[..., C]``."""
    return data.offers - alpha * torch.clamp(data.pots - 2 * data.offers, min=0)


# -- latent states: what a subject can be, and how likely each makes its decisions ----------
def rationality_nodes(spec: Spec) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Hermite nodes ``zeta_h`` and log-weights ``log v_h`` of ``zeta ~ Normal(0, 1)``
    (one node at 0 when the spread of rationality is off)."""
    H = int(spec.rationality_nodes) if spec.rationality_spread_scale > 0 else 1
    nodes, weights = np.polynomial.hermite_e.hermegauss(H)
    weights = weights / weights.sum()
    return torch.as_tensor(nodes, dtype=DTYPE), torch.as_tensor(np.log(weights), dtype=DTYPE)


def n_norm_states(spec: Spec) -> int:
    """``K`` norms or ``G`` envy bins: the states a subject's norm can be in."""
    return len(spec.norms) if isinstance(spec, NormMixtureSpec) else int(spec.envy_bins)


def norm_state_names(spec: Spec) -> list[str]:
    """The norms (or envy bins, labelled by their envy ``alpha_g``), then ``inattentive``
    when that class is on: the columns of :func:`norm_probabilities`."""
    if isinstance(spec, NormMixtureSpec):
        names = list(spec.norms)
    else:
        names = [f"envy={math.exp(m):.4g}" for m in envy_grid(spec)[0].tolist()]
    return names + (["inattentive"] if spec.inattentive.enabled else [])


def state_names(spec: Spec) -> list[str]:
    """Names of a subject's latent states ``m``: its norm (or envy bin, labelled by its envy
    ``alpha_g``) at each rationality node ``h`` (``m = h * K + k``), then ``inattentive`` when
    that class is on."""
    if isinstance(spec, NormMixtureSpec):
        names = list(spec.norms)
    else:
        names = [f"envy={math.exp(m):.4g}" for m in envy_grid(spec)[0].tolist()]
    zeta, _ = rationality_nodes(spec)
    if len(zeta) > 1:
        names = [f"{n}|zeta={z:.2f}" for z in zeta.tolist() for n in names]
    return names + (["inattentive"] if spec.inattentive.enabled else [])


def norm_of_state(spec: Spec, state: torch.Tensor | np.ndarray):
    """The norm (or envy bin) index of states ``m`` (``K``, one past the last, for
    ``inattentive``)."""
    K = n_norm_states(spec)
    H = len(rationality_nodes(spec)[0])
    return np.where(np.asarray(state) >= H * K, K, np.asarray(state) % K)


def norm_probabilities(spec: Spec, state_prob: np.ndarray) -> np.ndarray:
    """``[..., K (+1)]``: state probabilities summed over the rationality nodes (the last
    column, if any, is ``inattentive``)."""
    K = n_norm_states(spec)
    H = len(rationality_nodes(spec)[0])
    body = state_prob[..., : H * K].reshape(*state_prob.shape[:-1], H, K).sum(-2)
    return np.concatenate([body, state_prob[..., H * K :]], axis=-1)


def state_tables(
    spec: Spec, data: ResponderData, params: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For role-level parameters ``params`` (each ``[..., R, ...]``; see :func:`role_params`):
    ``log_prior [..., R, M]`` (``log P(state m | role)``) and ``log_rej, log_acc
    [..., R, M, C]`` (each state's decision log-probabilities in every cell).

    State ``m = (h, k)``: norm ``k`` (or envy bin ``g``) with rationality
    ``lam_r exp(tau_r zeta_h)``. Norm mixture: ``P(m) = (1 - rho) v_h pi_rk``; inequity:
    ``P(m) = (1 - rho) v_h w_rg``; inattentive (if on): ``P = rho`` and ``P(reject) = 1/2``
    everywhere."""
    lam, eps = params["lam"], params.get("lapse")
    if isinstance(spec, NormMixtureSpec):
        log_norm = torch.log(params["pi"].clamp_min(1e-300))
        u = norm_utilities(spec, data)  # [K, C]
    else:
        log_norm = envy_log_weights(params["envy_mu"], params["envy_sigma"], spec)
        u = envy_utility(torch.exp(envy_grid(spec)[0])[:, None], data)  # [G, C]
    zeta, log_v = rationality_nodes(spec)
    if len(zeta) > 1:
        lam = lam[..., None] * torch.exp(params["lam_spread"][..., None] * zeta)  # [..., R, H]
    else:
        lam = lam[..., None]
    K, C = u.shape
    H = len(zeta)
    lead = lam.shape[:-1]  # [..., R]
    log_rej, log_acc = reject_logprob(
        lam[..., :, None, None], u, None if eps is None else eps[..., None, None, None]
    )  # [..., R, H, K, C]
    log_rej = log_rej.reshape(*lead, H * K, C)
    log_acc = log_acc.reshape(*lead, H * K, C)
    log_prior = (log_v[:, None] + log_norm[..., None, :]).reshape(*lead, H * K)
    if spec.inattentive.enabled:
        rho = params["inattentive"]
        log_prior = torch.cat(
            [torch.log1p(-rho)[..., None] + log_prior, torch.log(rho)[..., None]], dim=-1
        )
        half = torch.full_like(log_rej[..., :1, :], -math.log(2.0))
        log_rej = torch.cat([log_rej, half], dim=-2)
        log_acc = torch.cat([log_acc, half], dim=-2)
    return log_prior, log_rej, log_acc


def subject_joint(spec: Spec, data: ResponderData, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """``J[..., s, m] = log P(state m | role r(s)) + log p(y_s | state m, theta)``; a subject's
    log-likelihood is ``logsumexp_m J[..., s, m]`` and its state posterior ``softmax_m J``."""
    log_prior, log_rej, log_acc = state_tables(spec, data, params)
    return log_prior[..., data.role_index, :] + cell_loglik(log_rej, log_acc, data)


def role_params(
    spec: Spec, draws: dict[str, torch.Tensor], n_roles: int
) -> dict[str, torch.Tensor]:
    """The sampled role-level sites (each ``[D, R, ...]``), with ``lam`` filled in when the
    hypothesis fixes it."""
    params = dict(draws)
    if "lam" not in params:
        key = "pi" if "pi" in draws else "envy_mu"
        batch = draws[key].shape[: -2 if key == "pi" else -1]
        params["lam"] = torch.full((*batch, n_roles), float(spec.rationality), dtype=DTYPE)
    return params


# -- Pyro models --------------------------------------------------------------------------------
def _lognormal(median: float, scale: float) -> dist.Distribution:
    return dist.LogNormal(
        torch.tensor(math.log(median), dtype=DTYPE), torch.tensor(scale, dtype=DTYPE)
    )


def _beta(prior: BetaPrior) -> dist.Distribution:
    return dist.Beta(torch.tensor(prior.a, dtype=DTYPE), torch.tensor(prior.b, dtype=DTYPE))


def role_sites(spec: Spec, data: ResponderData) -> dict[str, torch.Tensor]:
    """Sample the role-level sites (the ``role`` plate, dim -1): norm shares ``pi`` or envy
    ``envy_mu, envy_sigma``; ``lam`` (if latent), ``lapse`` and ``inattentive`` (if on)."""
    params: dict[str, torch.Tensor] = {}
    with pyro.plate("role", data.n_roles, dim=-1):
        if isinstance(spec, NormMixtureSpec):
            conc = torch.tensor(spec.hypothesis.pi_concentration, dtype=DTYPE)
            params["pi"] = pyro.sample("pi", dist.Dirichlet(conc))
        else:
            params["envy_mu"] = pyro.sample(
                "envy_mu",
                dist.Normal(
                    torch.tensor(spec.envy_mu_loc, dtype=DTYPE),
                    torch.tensor(spec.envy_mu_scale, dtype=DTYPE),
                ),
            )
            params["envy_sigma"] = pyro.sample(
                "envy_sigma", dist.HalfNormal(torch.tensor(spec.envy_sigma_scale, dtype=DTYPE))
            )
        if spec.rationality_scale > 0:
            params["lam"] = pyro.sample("lam", _lognormal(spec.rationality, spec.rationality_scale))
        else:
            params["lam"] = torch.full((data.n_roles,), float(spec.rationality), dtype=DTYPE)
        if spec.rationality_spread_scale > 0:
            params["lam_spread"] = pyro.sample(
                "lam_spread",
                dist.HalfNormal(torch.tensor(spec.rationality_spread_scale, dtype=DTYPE)),
            )
        if spec.lapse.enabled:
            params["lapse"] = pyro.sample("lapse", _beta(spec.lapse))
        if spec.inattentive.enabled:
            params["inattentive"] = pyro.sample("inattentive", _beta(spec.inattentive))
    return params


def marginal_model(data: ResponderData, spec: Spec) -> None:
    """Either hypothesis with every subject's latent state summed out (exact for the norms,
    the envy grid for the envy): ``sum_s logsumexp_m J[s, m]`` as one factor, computed once
    per distinct subject pattern (:attr:`ResponderData.compressed`)."""
    params = role_sites(spec, data)
    patterns, weight, _ = data.compressed
    loglik = torch.logsumexp(subject_joint(spec, patterns, params), dim=-1)
    pyro.factor("subjects", (weight * loglik).sum())


def _decisions(
    data: ResponderData, log_rej: torch.Tensor, log_acc: torch.Tensor, inattentive
) -> None:
    """The ``reject`` site of the explicit models: ``log_rej, log_acc [..., S, T]`` per
    decision, replaced by 1/2 where ``inattentive`` is 1."""
    logits = log_rej - log_acc
    if inattentive is not None:
        logits = torch.where(inattentive > 0.5, torch.zeros_like(logits), logits)
    with pyro.poutine.mask(mask=data.mask):
        pyro.sample("reject", dist.Bernoulli(logits=logits), obs=data.rejected)


def _inattentive_site(spec: Spec, params: dict[str, torch.Tensor], data: ResponderData):
    if not spec.inattentive.enabled:
        return None
    rho = params["inattentive"][data.role_index].unsqueeze(-1)  # [S, 1]
    return pyro.sample("attention", dist.Bernoulli(rho), infer=ENUM)  # 1: inattentive


def _subject_rationality(spec: Spec, params: dict[str, torch.Tensor], data: ResponderData):
    """``lam_s = lam_r exp(tau_r zeta_s)`` with ``zeta_s`` a sampled site (if the spread is
    on), inside the subject plate: ``[S, 1]``."""
    r = data.role_index.unsqueeze(-1)
    lam = params["lam"][r]
    if spec.rationality_spread_scale > 0:
        zeta = pyro.sample("lam_zeta", dist.Normal(torch.zeros((), dtype=DTYPE), 1.0))
        lam = lam * torch.exp(params["lam_spread"][r] * zeta)
    return lam


def norm_mixture_model(data: ResponderData, spec: NormMixtureSpec) -> None:
    """The explicit norm-mixture model (module docstring) with each subject's ``norm`` and
    ``attention`` (1: inattentive) as enumerable sites and its rationality ``lam_zeta`` a
    sampled one. Plates: ``role`` (dim -1, outside the subjects), ``subject`` (dim -2) and
    ``trial`` (dim -1: a subject's own decisions, padding masked out)."""
    params = role_sites(spec, data)
    r = data.role_index.unsqueeze(-1)  # [S, 1]
    u = norm_utilities(spec, data)  # [K, C]
    eps = params.get("lapse")
    with pyro.plate("subject", data.n_subjects, dim=-2):
        lam = _subject_rationality(spec, params, data)
        inattentive = _inattentive_site(spec, params, data)
        z = pyro.sample("norm", dist.Categorical(params["pi"][r]), infer=ENUM)
        with pyro.plate("trial", data.cell.shape[1], dim=-1):
            u_st = Vindex(u)[z, data.cell]  # [..., S, T]
            log_rej, log_acc = reject_logprob(lam, u_st, None if eps is None else eps[r])
            _decisions(data, log_rej, log_acc, inattentive)


def inequity_model(data: ResponderData, spec: InequitySpec) -> None:
    """The explicit inequity-aversion model (module docstring): each subject's envy
    ``envy ~ LogNormal(mu_r, sigma_r)`` and rationality ``lam_zeta`` are sampled sites and
    ``attention`` (1: inattentive) an enumerable one. Plates as in
    :func:`norm_mixture_model`."""
    params = role_sites(spec, data)
    r = data.role_index.unsqueeze(-1)
    eps = params.get("lapse")
    with pyro.plate("subject", data.n_subjects, dim=-2):
        lam = _subject_rationality(spec, params, data)
        inattentive = _inattentive_site(spec, params, data)
        alpha = pyro.sample("envy", dist.LogNormal(params["envy_mu"][r], params["envy_sigma"][r]))
        with pyro.plate("trial", data.cell.shape[1], dim=-1):
            u = torch.gather(envy_utility(alpha, data), -1, data.cell)  # [S, T]
            log_rej, log_acc = reject_logprob(lam, u, None if eps is None else eps[r])
            _decisions(data, log_rej, log_acc, inattentive)


def explicit_model(spec: Spec):
    """The explicit Pyro model of a hypothesis."""
    return norm_mixture_model if isinstance(spec, NormMixtureSpec) else inequity_model


# -- after sampling: each subject's state, and replicated data ------------------------------
def subject_posterior(
    spec: Spec,
    data: ResponderData,
    params: dict[str, torch.Tensor],
    generator: torch.Generator,
    chunk: int = 64,
) -> dict[str, torch.Tensor]:
    """Per-subject results for draws ``params`` (each ``[D, R, ...]``):

    * ``loglik [D, S]``: ``log p(y_s | theta_d)``, the subject's decisions with its state
      summed out (for PSIS-LOO: leave one subject out);
    * ``state_prob [S, M]``: ``P(state m | y_s)``, Rao-Blackwellised (averaged over draws);
    * ``state [D, S]``: a draw of each subject's state from ``P(m | theta_d, y_s)``;
    * ``envy [D, S]`` (inequity only): a draw of each subject's envy ``alpha_s`` (its bin's
      midpoint);
    * ``replicated [D, S, C]``: replicated rejections ``~ Binomial(n_trials[s, c],
      P(reject | state[d, s], theta_d))``: the posterior predictive of the same subjects.

    Computed per distinct subject pattern, then spread to the subjects."""
    patterns, _, inverse = data.compressed
    D = next(iter(params.values())).shape[0]
    out: dict[str, list[torch.Tensor]] = {"loglik": [], "state": [], "replicated": []}
    prob_sum = None
    for start in range(0, D, chunk):
        part = {k: v[start : start + chunk] for k, v in params.items()}
        _, log_rej, _ = state_tables(spec, patterns, part)
        joint = subject_joint(spec, patterns, part)[:, inverse]  # [d, S, M]
        out["loglik"].append(torch.logsumexp(joint, -1))
        post = torch.softmax(joint, -1)
        prob_sum = post.sum(0) if prob_sum is None else prob_sum + post.sum(0)
        flat = post.reshape(-1, post.shape[-1])
        state = torch.multinomial(flat, 1, generator=generator).reshape(post.shape[:-1])
        out["state"].append(state)
        d = state.shape[0]
        if isinstance(spec, InequitySpec):
            # envy of each subject: its bin; an inattentive subject's envy is not informed by
            # its decisions, so it is drawn from the population's P(bin | role)
            G = int(spec.envy_bins)
            bins = torch.as_tensor(norm_of_state(spec, state.numpy()))
            lazy = bins >= G
            if lazy.any():
                w = envy_log_weights(part["envy_mu"], part["envy_sigma"], spec)  # [d, R, G]
                w_s = torch.softmax(w[:, data.role_index], -1)  # [d, S, G]
                prior_bin = torch.multinomial(w_s.reshape(-1, G), 1, generator=generator)
                bins = torch.where(lazy, prior_bin.reshape(state.shape), bins)
            out.setdefault("envy", []).append(torch.exp(envy_grid(spec)[0])[bins])
        p_rej = log_rej.exp()  # [d, R, M, C]
        role = data.role_index.expand(d, -1)
        probs = p_rej[torch.arange(d)[:, None], role, state]  # [d, S, C]
        counts = data.n_trials.expand(d, -1, -1)
        out["replicated"].append(_binomial(counts, probs, generator))
    result = {k: torch.cat(v) for k, v in out.items()}
    result["state_prob"] = prob_sum / D
    return result


def _binomial(counts: torch.Tensor, probs: torch.Tensor, generator: torch.Generator):
    """``Binomial(counts, probs)`` draws with an explicit generator (small counts: a sum of
    Bernoulli draws)."""
    n_max = int(counts.max())
    trials = torch.rand((n_max, *counts.shape), generator=generator, dtype=DTYPE)
    hits = (trials < probs) & (torch.arange(n_max).view(-1, *[1] * counts.dim()) < counts)
    return hits.sum(0).to(DTYPE)
