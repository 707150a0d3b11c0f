"""The exact engine's Gaussian prior of its gridded scalars (``GroupPrior.scalar_gaussian``).

It is torch's ``MultivariateNormal`` log density computed without that class's constructor,
whose shape check imports SymPy (~0.5 s of CPU in each process that builds one): the same bits
as torch's, and a process that fits a latent-scalar hypothesis exactly never imports SymPy."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from scai.models.hypotheses import PRESETS
from scai.models.prior import GroupPrior

LATENT = {
    "pooled": PRESETS["pooled"],
    "essential_goods_shared": PRESETS["essential_goods_shared"],
    "latent_lam": PRESETS["neutral"].with_(rationality_scale=0.3),
    "latent_lam_pooled": PRESETS["pooled"].with_(rationality_scale=0.3),
}


@pytest.mark.parametrize("name", sorted(LATENT))
@pytest.mark.parametrize("essential", [(0.0,), (0.0, 1.0, 0.0), (1.0, 0.0, 1.0, 1.0)])
def test_log_density_has_torch_s_bits(name, essential):
    prior = GroupPrior(LATENT[name]).scalar_gaussian(torch.tensor(essential))
    torch_s = torch.distributions.MultivariateNormal(prior.loc, prior.covariance_matrix)
    generator = torch.Generator().manual_seed(len(essential))
    d = prior.loc.shape[0]
    for shape in [(d,), (50, d), (4, 6, d)]:
        u = 3 * torch.randn(shape, generator=generator, dtype=torch.float64)
        ours = prior.log_prob(u)
        assert ours.shape == shape[:-1]
        assert torch.equal(ours, torch_s.log_prob(u))


def test_a_nan_point_is_refused_as_torch_s_validation_refuses_it():
    prior = GroupPrior(LATENT["pooled"]).scalar_gaussian(torch.tensor((0.0, 1.0)))
    point = torch.zeros(3, prior.loc.shape[0], dtype=torch.float64)
    point[1, 0] = float("nan")
    with pytest.raises(ValueError):
        torch.distributions.MultivariateNormal(prior.loc, prior.covariance_matrix).log_prob(point)
    with pytest.raises(ValueError, match="NaN"):
        prior.log_prob(point)


def test_an_exact_fit_of_latent_shifts_does_not_import_sympy(tmp_path):
    code = (
        "import sys\n"
        "from scai.inference import fit\n"
        "from scai.models.hypotheses import PRESETS\n"
        "from scai.models.simulate import simulate\n"
        "currencies = ['dollars', 'blood']\n"
        "games = simulate('pooled', policy='fair', users=6, sims=2, currency=currencies, seed=3)\n"
        "fit(games.interactions, PRESETS['pooled'], engine='exact', seed=0)\n"
        "print('sympy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
