"""Quadrature grids for the exact engine: what it grids, and where. A module a kind of grid:

* :mod:`~scai.inference.grids.latent`: which continuous quantities besides ``pi`` are latent
  (:func:`~scai.inference.grids.latent.latent_scalars`); the engine integrates at most
  :data:`~scai.inference.grids.latent.MAX_LATENT_SCALARS` of them
  (:func:`~scai.inference.grids.latent.check_exact` refuses more) and maps grid coordinates to
  parameters with :func:`~scai.inference.grids.latent.grid_parameters`.
* The scalars' grids: a uniform product grid over +-6 prior sd
  (:func:`~scai.inference.grids.boxes.uniform_grid`), then a finer one around every mode of the
  coarse marginal: windows in one dimension (:mod:`~scai.inference.grids.windows`), boxes in two
  (:mod:`~scai.inference.grids.boxes`: again where a box's mass moves as its step halves or it
  is too coarse for its mass), and patches along a thin diagonal ridge's own axes
  (:mod:`~scai.inference.grids.patches`).
* :mod:`~scai.inference.grids.simplex`: the group mixture ``pi`` on a lattice of the simplex,
  zoomed onto a posterior narrower than its step, and the lattice's error under the prior.
* :mod:`~scai.inference.grids.bounded`: the sites in (0, 1) (lapse, stereotype strength, clone
  probability) on the logit scale.
* :mod:`~scai.inference.grids.resolution`: whether a grid resolves a posterior (its effective
  number of points against what a Gaussian one step wide has), for every grid above.
"""
