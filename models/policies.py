"""Policies as social utilities, and the noisily rational actions they imply.

A policy type ``k`` values a split that gives itself ``x`` units and the other player ``y``
units at (Fehr & Schmidt 1999, plus a weight on the other's payoff)::

    U_k(x, y) = x + w_k * y - alpha_k * max(y - x, 0) - beta_k * max(x - y, 0)

and a rejected offer at ``U = 0``. Selfish: ``w = alpha = beta = 0``. Fair: large envy
``alpha`` and guilt ``beta``. Altruistic: ``w > 1``. A currency may shift the weight on the
other's payoff (``w_k + shift``), which is how essential goods can carry a different norm.

Utilities are measured in units of the pot, not as shares, and the rationality ``lam`` is per
unit: the original study's users offered 1 unit (selfish) or kept 0-1 unit (altruistic)
whatever the pot, which is what a per-unit noise scale produces.

Actions are softmax-rational with rationality ``lam``:

* the responder accepts offer ``o`` of pot ``N`` with probability
  ``sigmoid(lam * U_k(o, N - o))``;
* the proposer offers ``o`` with probability proportional to ``exp(lam * EU_k(o))``, where
  ``EU_k(o) = P_accept_k(o) * U_k(N - o, o)`` and the proposer expects a responder that shares
  its own norm (social projection). Each user's actions therefore depend on its own type only,
  which lets the likelihood factorise over users.

Everything is a ``(types x pots x offers)`` table computed once per parameter draw.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from scai.models.errors import HypothesisError, show_value, utf8_writable
from scai.models.underflow import log_normalise, sigmoid


def _composed_hint(name: object) -> str:
    """Why a name of letters is not one: combining marks (``"fa\u0308ir"``, decomposed)."""
    if isinstance(name, str) and unicodedata.normalize("NFC", name) != name:
        return " (it holds combining marks: write it composed, Unicode's NFC form)"
    return ""


@dataclass(frozen=True)
class PolicyType:
    """A named social utility: weight ``w`` on the other's payoff, envy ``alpha``, guilt
    ``beta``.

    A type may respond by other parameters than it proposes by (``responder``: its responder's
    ``(w, alpha, beta)``): a *role-dependent* norm, such as GPT-4's "selfish" users, who keep
    all but one unit as proposers and reject one-unit offers as responders. Its proposer still
    expects a responder of its own proposer's norm (social projection). ``norm`` names the
    norm its proposals follow (default: the type's own name), so that role variants of one norm
    can be counted together; its ``(w, alpha, beta)`` are that norm's (a hypothesis checks it,
    and a TOML file that leaves them out takes them from the norm)."""

    name: str
    w: float = 0.0
    alpha: float = 0.0
    beta: float = 0.0
    description: str = ""
    responder: tuple[float, float, float] | None = None
    norm: str = ""

    def __post_init__(self) -> None:
        if (
            not isinstance(self.name, str)
            or not self.name
            or not self.name.replace("_", "").replace("-", "").isalnum()
        ):
            raise HypothesisError(
                f"policy name must be a non-empty identifier (letters, digits, '_' and '-'), got "
                f"{self.name!r}{_composed_hint(self.name)}"
            )
        for field in ("w", "alpha", "beta"):
            value = getattr(self, field)
            if not isinstance(value, int | float) or value != value or abs(value) == float("inf"):
                raise HypothesisError(
                    f"policy {self.name!r}: {field} must be a finite number, got {value!r}"
                )
        for field in ("alpha", "beta"):
            if getattr(self, field) < 0:
                raise HypothesisError(
                    f"policy {self.name!r}: {field} must be >= 0 (an aversion to inequity), "
                    f"got {getattr(self, field)!r}"
                )
        for field in ("w", "alpha", "beta"):  # a whole number as its float (w = 1 is w = 1.0)
            value = getattr(self, field)
            if type(value) is int and abs(value) < 2**1000:  # (bools, huge ones: the range check)
                object.__setattr__(self, field, float(value))
        if not isinstance(self.description, str) or not utf8_writable(self.description):
            raise HypothesisError(
                f"policy {self.name!r}: description must be a string of Unicode characters "
                f"(UTF-8 writes it), got {show_value(self.description)}"
            )
        if self.responder is not None:
            try:
                values = tuple(self.responder)
            except TypeError:  # not a sequence: the message below says what is allowed
                values = ()
            if len(values) != 3 or not all(
                isinstance(v, int | float) and v == v and abs(v) != float("inf") for v in values
            ):
                raise HypothesisError(
                    f"policy {self.name!r}: responder must be three finite numbers (w, alpha, "
                    f"beta), got {show_value(self.responder)}"
                )
            for field, value in zip(("alpha", "beta"), values[1:], strict=True):
                if value < 0:
                    raise HypothesisError(
                        f"policy {self.name!r}: the responder's {field} must be >= 0 (an "
                        f"aversion to inequity), got {value!r}"
                    )
            object.__setattr__(self, "responder", tuple(float(v) for v in values))
        if not isinstance(self.norm, str):
            raise HypothesisError(
                f"policy {self.name!r}: norm must be a policy name, got {self.norm!r}"
            )

    @property
    def proposes_as(self) -> str:
        """The norm this type's proposals follow."""
        return self.norm or self.name

    @property
    def responder_parameters(self) -> tuple[float, float, float]:
        """``(w, alpha, beta)`` of its responder."""
        return self.responder if self.responder is not None else (self.w, self.alpha, self.beta)


#: The named policy types of the original study, with default utility parameters.
SELFISH = PolicyType("selfish", w=0.0, alpha=0.0, beta=0.0, description="keeps all it can")
FAIR = PolicyType("fair", w=0.0, alpha=2.0, beta=2.0, description="splits evenly")
ALTRUISTIC = PolicyType("altruistic", w=2.0, alpha=0.0, beta=0.0, description="gives it away")
DEFAULT_POLICIES: tuple[PolicyType, ...] = (SELFISH, FAIR, ALTRUISTIC)


def utility(
    x_self: torch.Tensor,
    y_other: torch.Tensor,
    w: torch.Tensor,
    alpha: torch.Tensor,
    beta: torch.Tensor,
) -> torch.Tensor:
    """``U(x, y) = x + w y - alpha max(y - x, 0) - beta max(x - y, 0)``, broadcasting."""
    return (
        x_self
        + w * y_other
        - alpha * torch.clamp(y_other - x_self, min=0)
        - beta * torch.clamp(x_self - y_other, min=0)
    )


@dataclass
class ActionTables:
    """Log-probabilities of every action, for each type, pot and offer.

    ``offer_logp[..., k, p, o]`` is ``log P(offer = o | type k, pot = pots[p])`` (``-inf`` for
    ``o > pot``); ``accept_logit[..., k, p, o]`` is the log-odds of accepting offer ``o``.
    Leading ``...`` are batch dimensions of the parameters (draws, simulations). ``pots`` is
    ``[P]``, or ``[..., P]`` where the pots differ along the batch (each simulation's own,
    aligned with the tables' ``[..., K, P]``: see :func:`utility_tables`).
    """

    pots: torch.Tensor
    offer_logp: torch.Tensor
    accept_logit: torch.Tensor

    def accept_prob(self) -> torch.Tensor:
        return torch.sigmoid(self.accept_logit)


@dataclass
class UtilityTables:
    """What the players' utilities are for every type, pot and offer, before the rationality
    ``lam`` scales them: ``u_resp`` (the responder's, on accepting, by its responder's norm),
    ``u_prop`` (the proposer's, if accepted) and ``u_proj`` (what the proposer expects a
    responder of its own proposer's norm to gain: equal to ``u_resp`` unless the type's norm is
    role-dependent), each ``[..., K, P, O]``, and ``valid [P, O]`` (``offer <= pot``; with
    pots ``[..., P]``, ``[..., P, O]``).
    """

    u_resp: torch.Tensor
    u_prop: torch.Tensor
    valid: torch.Tensor
    pots: torch.Tensor
    u_proj: torch.Tensor | None = None

    @property
    def projected(self) -> torch.Tensor:
        return self.u_resp if self.u_proj is None else self.u_proj


def utility_tables(
    w: torch.Tensor,
    alpha: torch.Tensor,
    beta: torch.Tensor,
    pots: torch.Tensor,
    shift: torch.Tensor | float = 0.0,
    responder: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> UtilityTables:
    """Utilities for types with parameters ``w, alpha, beta`` (each ``[..., K]``), the weight on
    the other's payoff shifted by ``shift`` (a scalar or batch shape ``[...]``); ``responder``:
    the responders' ``(w, alpha, beta)`` where they differ (role-dependent norms). ``pots``:
    ``[P]``, the same for the whole batch, or ``[..., 1, P]`` whose leading dimensions
    broadcast against the parameters' batch (a singleton for the types): each batch element's
    own ``P`` pots, the offers running to the largest pot of all."""
    dtype = torch.get_default_dtype()
    shift = torch.as_tensor(shift, dtype=dtype)
    pot = pots.to(dtype)[..., None]  # [..., P, 1]
    offer = torch.arange(int(pots.max()) + 1, dtype=dtype)  # [O]

    def params(w_, a_, b_):
        w_ = (torch.as_tensor(w_, dtype=dtype) + shift.unsqueeze(-1))[..., None, None]
        a_ = torch.as_tensor(a_, dtype=dtype)[..., None, None]
        return w_, a_, torch.as_tensor(b_, dtype=dtype)[..., None, None]

    own = params(w, alpha, beta)  # [..., K, 1, 1] each
    # Responder: gets the offer, the proposer keeps the rest.
    u_resp = utility(offer, pot - offer, *own)
    # Proposer: keeps pot - offer.
    u_prop = utility(pot - offer, offer, *own)
    if responder is None:
        return UtilityTables(u_resp, u_prop, offer <= pot, pots)
    u_role = utility(offer, pot - offer, *params(*responder))
    return UtilityTables(u_role, u_prop, offer <= pot, pots, u_proj=u_resp)


def rational_tables(
    utilities: UtilityTables,
    lam: torch.Tensor | float,
    lapse: torch.Tensor | float | None = None,
) -> ActionTables:
    """Noisily rational actions: accept with ``sigmoid(lam * u_resp)``; offer with
    ``softmax(lam * E[u_prop])``, expecting a responder of the proposer's own norm
    (``u_proj``). ``lam`` is a scalar or has the utilities' batch shape ``[...]``.

    With a lapse rate ``eps`` (same shapes; ``None`` or 0: none), each action is random with
    probability ``eps``: ``P(o) = eps / (pot + 1) + (1 - eps) P_rational(o)`` and
    ``P(accept) = eps / 2 + (1 - eps) P_rational(accept)``, so one surprising act costs at most
    ``-log(eps / n_actions)`` nats. Proposers plan for their partners' norm, not their slips."""
    dtype = torch.get_default_dtype()
    lam = torch.as_tensor(lam, dtype=dtype)[..., None, None, None]
    accept_logit = lam * utilities.u_resp
    projected = accept_logit if utilities.u_proj is None else lam * utilities.u_proj
    expected = sigmoid(projected) * utilities.u_prop
    logits = torch.where(utilities.valid, lam * expected, torch.tensor(-torch.inf, dtype=dtype))
    offer_logp = log_normalise(logits)  # (the best logit is finite: offer 0 is always valid)
    tables = ActionTables(pots=utilities.pots, offer_logp=offer_logp, accept_logit=accept_logit)
    return with_lapse(tables, lapse)


def with_lapse(tables: ActionTables, lapse: torch.Tensor | float | None) -> ActionTables:
    """The tables of :func:`rational_tables` without a lapse, with lapse rate ``lapse``
    (``None`` or 0: unchanged; else broadcast against the tables' batch shape ``[...]``). The
    rational part does not depend on the lapse, so it can be computed once for many lapses."""
    if lapse is None or (isinstance(lapse, float | int) and lapse == 0):
        return tables
    dtype = torch.get_default_dtype()
    pots, offer_logp, accept_logit = tables.pots, tables.offer_logp, tables.accept_logit
    valid = torch.arange(offer_logp.shape[-1], dtype=dtype) <= pots.to(dtype)[..., None]
    eps = torch.as_tensor(lapse, dtype=dtype)[..., None, None, None]
    n_offers = (pots.to(dtype) + 1)[..., None]  # [..., P, 1]
    slip = torch.log(eps / n_offers)
    offer_logp = torch.where(
        valid,
        torch.logaddexp(slip, torch.log1p(-eps) + offer_logp),
        torch.tensor(-torch.inf, dtype=dtype),
    )
    half = torch.log(eps / 2)
    keep = torch.log1p(-eps)
    log_accept = torch.logaddexp(half, keep + F.logsigmoid(accept_logit))
    log_reject = torch.logaddexp(half, keep + F.logsigmoid(-accept_logit))
    accept_logit = log_accept - log_reject
    return ActionTables(pots=pots, offer_logp=offer_logp, accept_logit=accept_logit)


def action_tables(
    w: torch.Tensor,
    alpha: torch.Tensor,
    beta: torch.Tensor,
    pots: torch.Tensor,
    lam: torch.Tensor | float,
    shift: torch.Tensor | float = 0.0,
    responder: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    lapse: torch.Tensor | float | None = None,
) -> ActionTables:
    """Action tables for types with parameters ``w, alpha, beta`` (each ``[..., K]``).

    ``pots`` is a 1-d integer tensor of the distinct pots needed; ``lam``, ``shift`` and
    ``lapse`` are scalars or tensors of batch shape ``[...]`` (broadcast against the types'
    batch shape); ``responder`` as in :func:`utility_tables`.
    """
    return rational_tables(utility_tables(w, alpha, beta, pots, shift, responder), lam, lapse)


def responder_parameters(
    policies: tuple[PolicyType, ...],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The responders' ``(w, alpha, beta)`` ``[K]`` tensors, or ``None`` if every type responds
    by the norm it proposes by."""
    if all(p.responder is None for p in policies):
        return None
    dtype = torch.get_default_dtype()
    rows = [p.responder_parameters for p in policies]
    return tuple(torch.tensor([r[i] for r in rows], dtype=dtype) for i in range(3))


def policy_parameters(policies: tuple[PolicyType, ...]) -> tuple[torch.Tensor, ...]:
    """``(w, alpha, beta)`` tensors of shape ``[K]`` for a tuple of policy types."""
    dtype = torch.get_default_dtype()
    return tuple(
        torch.tensor([getattr(p, f) for p in policies], dtype=dtype) for f in ("w", "alpha", "beta")
    )
