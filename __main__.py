"""``python -m scai``: the same as the ``scai`` console script."""

from scai.experiments.cli import console

console()
