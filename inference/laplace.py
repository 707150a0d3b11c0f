"""A Laplace approximation of the posterior, used to start NUTS: where to begin and how to
scale each coordinate.

NUTS starts with a unit mass matrix; its first adaptation window ends only after 75
iterations, so until then one step size must serve coordinates whose posterior scales differ
30-fold (with 200 users, ``log lam`` has sd ~0.007 and ``pi``'s sticks ~0.2) and each
iteration takes ~40-50 leapfrog steps: measured, half of a chain's gradients. Started at the
mode with the inverse mass matrix set to the Laplace approximation's marginal variances, the
first iterations cost what the last ones do. Adaptation then proceeds as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize

from inference.gradient_potential import GradientPotential


@dataclass
class Laplace:
    """``N(mode, diag(variance))`` on the unconstrained vector (``[S * width]`` each)."""

    mode: np.ndarray
    variance: np.ndarray


def laplace(potential: GradientPotential, max_iter: int = 200) -> Laplace | None:
    """The mode of ``-U`` found by L-BFGS from the prior median, and the marginal variances of
    ``H^-1``, ``H`` the Hessian of ``U`` there by central differences of the gradient.

    Simulations share no parameter, so ``H`` is block-diagonal (one ``width x width`` block
    per simulation) and ``2 * width`` gradients give every block at once. Returns ``None``
    when the optimiser fails or a block is not positive definite (no mode found)."""
    lay = potential.layout
    start = potential.initial().double().numpy()
    with np.errstate(all="ignore"):
        result = scipy.optimize.minimize(
            potential.value_and_grad,
            start,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iter, "ftol": 1e-13, "gtol": 1e-7},
        )
    mode = result.x
    if not np.all(np.isfinite(mode)) or not np.isfinite(result.fun):
        return None
    S, W = lay.n_sims, lay.width
    step = 1e-5
    hessian = np.empty((S, W, W))
    for j in range(W):
        delta = np.zeros((S, W))
        delta[:, j] = step
        up = potential.value_and_grad(mode + delta.reshape(-1))[1].reshape(S, W)
        down = potential.value_and_grad(mode - delta.reshape(-1))[1].reshape(S, W)
        hessian[:, :, j] = (up - down) / (2 * step)
    hessian = 0.5 * (hessian + hessian.transpose(0, 2, 1))
    try:
        np.linalg.cholesky(hessian)
    except np.linalg.LinAlgError:
        return None
    variance = np.diagonal(np.linalg.inv(hessian), axis1=1, axis2=2).reshape(-1)
    return Laplace(mode, variance)
