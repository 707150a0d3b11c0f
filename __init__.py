"""scai: Bayesian Social Contract AI.

Learn a group's implicit norms by inverting a probabilistic model of its members, then act as
the group would. The package has three parts, imported one way only
(``models`` <- ``inference`` <- ``experiments``):

* :mod:`scai.models`: the generative story (game, policies, language, hypotheses, the Pyro
  model, its marginal density, data tables, the simulator);
* :mod:`scai.inference`: the exact, SVI and MCMC engines and their one result type,
  :class:`~scai.inference.Posterior`;
* :mod:`scai.experiments`: the assistant's protocol, the study's experiments and the ``scai``
  command line.
"""

__version__ = "0.2.0"

__all__ = ["__version__"]
