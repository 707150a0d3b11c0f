"""``python -m scai``: the same as the ``scai`` console script."""

import sys

from scai.experiments.cli import main

sys.exit(main())
