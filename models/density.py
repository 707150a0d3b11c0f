"""One density behind every engine: :class:`MarginalDensity`.

``log p(theta, data)`` of the social-contract model (:mod:`scai.models.model`) with each
user's policy and manner summed out, on the unconstrained coordinates ``theta`` of
:class:`~scai.models.prior.Coordinates` (Jacobians of the transforms included)::

    log p(theta, data) = log p(theta)                      (GroupPrior, unconstrained)
                       + sum_s sum_u log sum_k pi_sk exp(L[s, u, k])     (models.marginal)

It owns the prior (:class:`~scai.models.prior.GroupPrior`), the transforms, the per-user
marginal log-likelihood in two backends (the torch reference, :mod:`scai.models.marginal`, and
NumPy with its gradient by hand, :mod:`scai.models.marginal_numpy`, for every hypothesis: what
NUTS runs on), ``log_joint`` and prior draws. The exact engine, SVI's start and
importance correction, NUTS, the posterior's log density and the assistant's prior all read
it; tests hold both backends equal to the Pyro model's enumerated density (1e-9 in float64).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import expit
from torch.distributions.transforms import StickBreakingTransform

from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.marginal import (
    EventIndex,
    group_loglik,
    own_pots,
    prototype_loglik,
    shared_by_simulations,
    tone_loglik,
    user_loglik,
)
from scai.models.marginal_numpy import AgentMarginal, NumpyMarginal, Scalars
from scai.models.model import group_utilities
from scai.models.prior import Coordinates, GroupPrior


def _plain(hypothesis: Hypothesis) -> bool:
    """No lapse, no learned coupling, no clones: the NumPy backend is :class:`NumpyMarginal`,
    else :class:`AgentMarginal`."""
    return (
        hypothesis.lapse == 0
        and not hypothesis.lapse_is_latent
        and not hypothesis.coupling_is_latent
        and not hypothesis.clones
    )


class MarginalDensity:
    """``log p(theta, data)`` (module docstring) for one data set and hypothesis.

    Calling it returns the potential ``U(theta) = -log p(theta, data)`` summed over
    simulations as a torch scalar whose gradient comes from the NumPy backend (what NUTS runs
    on); :meth:`log_joint` is the torch reference, differentiable by autograd.
    """

    def __init__(self, data: GroupData, hypothesis: Hypothesis):
        self.data = data
        self.hypothesis = hypothesis
        self.prior = GroupPrior(hypothesis)
        self.coords: Coordinates = self.prior.coordinates(data.shape[0], len(data.currencies))
        self.columns = self.coords.columns()
        self.essential = data.essential
        self.index = EventIndex.from_data(data)
        self.tones = tone_loglik(data, hypothesis)
        self.stick = StickBreakingTransform()
        lam, shift = self.fixed_values()
        self.varies = self.coords.has_scalars
        c = self.coords
        self.tables_vary = c.latent_lam or c.latent_shared or c.latent_shift
        self.fixed_loglik = None
        if not self.varies:
            lam_1, shift_1 = shared_by_simulations(lam, shift)
            self.fixed_loglik = user_loglik(
                data, hypothesis, lam_1, shift_1, self.index, self.tones
            )
        # With the currency shifts fixed, only lam varies: the utilities are constants, one
        # set per simulation ([S, C] shifts), over each simulation's own pots where narrower.
        self.utilities = None
        if not (self.coords.latent_shared or self.coords.latent_shift):
            own = own_pots(data, self.index)
            self.utilities = group_utilities(hypothesis, data.pots if own is None else own, shift)
        self.numpy: NumpyMarginal | AgentMarginal
        if _plain(hypothesis):
            self.numpy = NumpyMarginal(data, hypothesis, self.index, self.tones)
            if not self.varies:
                self.numpy.fix_users(self.fixed_loglik.double().numpy())
        else:
            self.numpy = AgentMarginal(
                data,
                hypothesis,
                self.index,
                self.tones,
                lam,
                shift,
                self.coords.bounded,
                varying=self.tables_vary,
            )
        self._essential_np = self.essential.double().numpy()

    # -- coordinates --------------------------------------------------------------------------
    def fixed_values(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lam [S], shift [S, C])`` at their fixed values (where not latent)."""
        S = self.coords.n_sims
        dtype = torch.get_default_dtype()
        lam = torch.full((S,), self.hypothesis.rationality, dtype=dtype)
        shift = self.prior.shift_mean(torch.zeros(S, dtype=dtype), self.essential)
        return lam, shift

    def initial(self) -> torch.Tensor:
        """``[S * width]``: the prior median."""
        return self.prior.median(self.coords, self.essential)

    def unshifted(self) -> torch.Tensor | None:
        """``[S * width]``: the prior median with every latent currency shift (and the shared
        shift) at 0, each currency acting as the reference does; ``None`` without a latent
        shift. A start for mode searches: a shift's posterior can hold a mode a thousandth wide
        beside 0, where ``lam * delta`` vanishes (its wall: :mod:`scai.inference.walls`), that
        no prior draw's L-BFGS reaches (six ``real_agents`` users in medicine under
        ``essential_goods_shared`` hold 84% of their mass there:
        ``benchmarks/known_disagreements.py``)."""
        starts = self.unshifted_starts()
        return starts[0] if starts else None

    def unshifted_starts(self) -> list[torch.Tensor]:
        """The starts of :meth:`unshifted` (``[S * width]`` each; none without a latent
        shift): the prior median with every latent shift at 0, and, where the shared shift is
        the only latent one and essential goods shift the norm by ``mu`` (``essential_shift``),
        the median with the shared shift at ``-mu``: there an essential currency's total shift
        ``delta0 + mu`` is 0, which the first start leaves at ``mu`` (six users in medicine
        under ``shared_scale = 0.5, essential_shift = 1.5``: MCMC's chains all started in a
        mode 11.6 nats below that one, and SVI's importance draws missed it)."""
        c = self.coords
        if not (c.latent_shift or c.latent_shared):
            return []
        cols = self.initial().reshape(c.n_sims, c.width).clone()
        for site in ("shift", "shift_shared"):
            if site in self.columns:
                cols[:, self.columns[site]] = 0.0
        starts = [cols.reshape(-1)]
        mu = self.prior.essential_shift
        if c.latent_shared and not c.latent_shift and mu != 0 and self._essential_np.any():
            essential = cols.clone()
            essential[:, self.columns["shift_shared"]] = -mu
            starts.append(essential.reshape(-1))
        return starts

    def constrain(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """``theta [..., S * width]`` -> the latent sites ``pi [..., S, K]``, ``lam [..., S]``,
        ``shift_shared [..., S]``, ``shift [..., S, C]``."""
        cols = theta.reshape(*theta.shape[:-1], self.coords.n_sims, self.coords.width)
        out = {"pi": self.stick(cols[..., self.columns["pi"]])}
        if self.coords.latent_lam:
            out["lam"] = cols[..., self.columns["lam"]][..., 0].exp()
        if self.coords.latent_shared:
            out["shift_shared"] = cols[..., self.columns["shift_shared"]][..., 0]
        if self.coords.latent_shift:
            out["shift"] = cols[..., self.columns["shift"]]
        out.update(self.bounded(cols))
        return out

    def parameters(self, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lam [..., S], shift [..., S, C])`` of ``cols [..., S, width]``."""
        batch = cols.shape[:-2]
        lam, shift = self.fixed_values()
        lam = lam.expand(*batch, -1)
        if self.coords.latent_lam:
            lam = cols[..., self.columns["lam"]][..., 0].exp()
        shared = torch.zeros(lam.shape, dtype=cols.dtype)
        if self.coords.latent_shared:
            shared = cols[..., self.columns["shift_shared"]][..., 0]
        shift = self.prior.shift_mean(shared, self.essential)
        if self.coords.latent_shift:
            shift = cols[..., self.columns["shift"]]
        return lam, shift

    def bounded(self, cols: torch.Tensor) -> dict[str, torch.Tensor]:
        """The latent sites in (0, 1) (``lapse``, ``strength``, ``clone``) ``[..., S]`` of
        ``cols [..., S, width]``."""
        return {
            site: torch.sigmoid(cols[..., self.columns[site]][..., 0])
            for site in self.coords.bounded
        }

    # -- the torch reference ------------------------------------------------------------------
    def log_prior(self, theta: torch.Tensor) -> torch.Tensor:
        """``[..., S]`` log prior density of ``theta [..., S * width]`` (Jacobians included)."""
        cols = theta.reshape(*theta.shape[:-1], self.coords.n_sims, self.coords.width)
        return self.prior.log_prob_unconstrained(cols, self.coords, self.essential)

    def log_joint(self, theta: torch.Tensor, prototype: np.ndarray | None = None) -> torch.Tensor:
        """``[..., S]``: each simulation's ``log p(theta_s, data_s)`` (Jacobians included),
        for ``theta [..., S * width]`` with any batch shape; with a latent clone probability
        and ``prototype [S]``, ``log p(theta_s, z0 = prototype_s, data_s)`` (one term of the
        prototype mixture: :func:`scai.models.marginal.prototype_loglik`)."""
        cols = theta.reshape(*theta.shape[:-1], self.coords.n_sims, self.coords.width)
        log_p = self.prior.log_prob_unconstrained(cols, self.coords, self.essential)
        loglik = self.user_loglik(cols)
        pi = self.stick(cols[..., self.columns["pi"]])
        log_pi = pi.clamp_min(torch.finfo(pi.dtype).tiny).log()
        clone = self.bounded(cols).get("clone")
        if prototype is not None:
            terms = prototype_loglik(log_pi, loglik, self.data.user_mask, clone)
            index = torch.as_tensor(prototype, dtype=torch.long).expand(*terms.shape[:-1])
            return log_p + terms.gather(-1, index.unsqueeze(-1)).squeeze(-1)
        return log_p + group_loglik(log_pi, loglik, self.data.user_mask, clone)

    def user_loglik(self, cols: torch.Tensor) -> torch.Tensor:
        """``[..., S, U, K]``: each user's log-likelihood under each type at ``cols [..., S,
        width]`` (:func:`scai.models.marginal.user_loglik`)."""
        if self.fixed_loglik is not None:
            return self.fixed_loglik
        bounded = self.bounded(cols)
        lam, shift = self.parameters(cols)
        strength = bounded.get("strength")
        return user_loglik(
            self.data,
            self.hypothesis,
            lam,
            shift,
            self.index,
            self.tones if strength is None else None,
            self.utilities,
            lapse=bounded.get("lapse"),
            strength=strength,
        )

    def prototype_posterior(self, theta: np.ndarray) -> np.ndarray:
        """``P(z0 = z | theta_s, data_s)`` ``[S, K]``, the clone prototype's posterior at a
        flat ``theta [S * width]`` (the clone probability latent), by the NumPy backend (the
        value of :func:`scai.models.marginal.prototype_posterior`)."""
        cols = np.asarray(theta, dtype=np.float64).reshape(self.coords.n_sims, self.coords.width)
        log_pi, _ = self.log_pi(cols)
        bounded = {s: expit(cols[:, self.columns[s]][:, 0]) for s in self.coords.bounded}
        return self.numpy.prototype(log_pi, bounded, self._scalars(cols))

    def sample_prior(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``[n, S, width]`` draws of ``theta`` from the prior."""
        return self.prior.sample_unconstrained(n, self.coords, self.essential, generator)

    # -- the NumPy backend --------------------------------------------------------------------
    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """``(U(theta), dU/dtheta)`` for a flat ``theta [S * width]`` (float64), where
        ``U = -sum_s log p(theta_s, data_s)``, by the NumPy backend."""
        values, grad = self.potentials_and_grad(theta)
        return float(values.sum()), grad

    def potentials_and_grad(
        self, theta: np.ndarray, prototype: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(U_s [S], dU/dtheta [S * width])``: each simulation's potential ``U_s =
        -log p(theta_s, data_s)`` and the gradient of their sum (simulations share no
        parameter, so the gradient's block ``s`` is ``U_s``'s); with ``prototype [S]``, of
        ``-log p(theta_s, z0 = prototype_s, data_s)`` (:meth:`log_joint`)."""
        coords, cols_of = self.coords, self.columns
        S = coords.n_sims
        cols = theta.reshape(S, coords.width)
        sticks = self.prior.sticks_np(cols[:, cols_of["pi"]])
        log_p, grad = self.prior.log_prob_unconstrained_np(cols, coords, self._essential_np, sticks)
        log_pi, z = self.log_pi(cols, sticks)
        scalars = self._scalars(cols)
        if isinstance(self.numpy, AgentMarginal):
            bounded = {site: expit(cols[:, cols_of[site]][:, 0]) for site in coords.bounded}
            g = self.numpy.group(log_pi, bounded, prototype, scalars)
            for site, d in (("lapse", g.d_lapse), ("strength", g.d_strength), ("clone", g.d_clone)):
                if d is not None:  # the site is sigmoid(x): dv/dx = v (1 - v)
                    v = bounded[site]
                    grad[:, cols_of[site]] += (v * (1 - v) * d)[:, None]
        elif scalars is None:  # only pi: the users' log-likelihoods are fixed
            g = self.numpy.group_of_pi(log_pi)
        else:
            g = self.numpy.group(
                log_pi, scalars.lam, scalars.shift, scalars.needs_lam, scalars.needs_shift
            )
        self._pull_pi(grad, g.d_log_pi, z)
        if scalars is not None:
            self._pull_scalars(grad, scalars.lam, g.d_lam, g.d_shift)
        return -(log_p + g.value), -grad.reshape(-1)

    def _scalars(self, cols: np.ndarray) -> Scalars | None:
        """``lam [S]`` and ``shift [S, C]`` at ``cols [S, width]``; ``None`` when neither is
        latent (the action tables are then fixed)."""
        coords, cols_of = self.coords, self.columns
        if not self.tables_vary:
            return None
        lam = np.full(coords.n_sims, self.hypothesis.rationality)
        if coords.latent_lam:
            lam = np.exp(cols[:, cols_of["lam"]][:, 0])
        shared = np.zeros(coords.n_sims)
        if coords.latent_shared:
            shared = cols[:, cols_of["shift_shared"]][:, 0]
        shift = shared[:, None] + self.prior.essential_shift * self._essential_np
        if coords.latent_shift:
            shift = cols[:, cols_of["shift"]]
        needs_shift = coords.latent_shift or coords.latent_shared
        return Scalars(lam, shift, coords.latent_lam, needs_shift)

    def _pull_scalars(
        self, grad: np.ndarray, lam: np.ndarray, d_lam: np.ndarray | None, d_shift
    ) -> None:
        """Add ``dG / d lam [S]`` and ``dG / d shift [S, C]`` to ``grad``'s columns of log
        ``lam`` and of the shifts (or of the shared shift they all follow)."""
        coords, cols_of = self.coords, self.columns
        if coords.latent_lam:
            grad[:, cols_of["lam"]] += (lam * d_lam)[:, None]
        if coords.latent_shift:
            grad[:, cols_of["shift"]] += d_shift
        elif coords.latent_shared:
            grad[:, cols_of["shift_shared"]] += d_shift.sum(-1, keepdims=True)

    def log_pi(
        self, cols: np.ndarray, sticks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(log pi [S, K], the stick fractions z [S, K - 1])`` of ``cols [S, width]``
        (``sticks``: :meth:`~scai.models.prior.GroupPrior.sticks_np` of its sticks' columns,
        if already computed)."""
        if sticks is None:
            sticks = self.prior.sticks_np(cols[:, self.columns["pi"]])
        z, log_z, log_1mz = sticks
        log_pi = np.zeros((len(z), z.shape[1] + 1))
        log_pi[:, :-1] = log_z
        log_pi[:, 1:] += log_1mz.cumsum(-1)  # log prod_{i<=j} (1 - z_i)
        return log_pi, z

    def _pull_pi(self, grad: np.ndarray, d_log_pi: np.ndarray, z: np.ndarray) -> None:
        """Add ``dG / d log pi [S, K]`` pulled back to the sticks' columns of ``grad``."""
        # d log pi_k / d x_j: (1 - z_j) for k = j, -z_j for k > j, 0 for k < j
        tail = d_log_pi[:, ::-1].cumsum(-1)[:, ::-1]  # sum_{k>=j} dG/dlog pi_k
        grad[:, self.columns["pi"]] += d_log_pi[:, :-1] * (1 - z) - z * tail[:, 1:]

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        """``U(theta)`` as a torch scalar with the NumPy backend's gradient."""
        return _HandGradient.apply(theta, self)


class _HandGradient(torch.autograd.Function):
    """``U(theta)`` as one autograd node: NumPy computes the value and the gradient together
    in the forward pass; the backward pass scales the stored gradient. (The ``forward(ctx,
    ...)`` form: with a separate ``setup_context``, torch binds the signature with ``inspect``
    on every call, ~0.1 ms.)"""

    @staticmethod
    def forward(ctx, theta: torch.Tensor, density: MarginalDensity) -> torch.Tensor:
        value, grad = density.value_and_grad(theta.detach().double().numpy())
        ctx.grad = torch.from_numpy(grad).to(theta.dtype)
        return torch.tensor(value, dtype=theta.dtype)

    @staticmethod
    def backward(ctx, grad_value: torch.Tensor):
        return grad_value * ctx.grad, None
