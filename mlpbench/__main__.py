"""``python -m mlpbench``: the same as the ``mlpbench`` console script."""

import sys

from mlpbench.cli import main

sys.exit(main())
